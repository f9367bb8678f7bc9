// Small helpers to build the DOM and format what the API returns. No framework: every view
// is rebuilt from API answers, so what the console shows is what the API says.

/** Builds an element: `h('button', {class: 'primary', onclick: f}, 'Save')`. Props starting
 *  with `on` are listeners; `class`, `for`, `text`, `html`-free by design (text only). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'for') {
      el.htmlFor = value;
    } else if (key === 'value') {
      el.value = value;
    } else if (key === 'checked' || key === 'selected' || key === 'disabled' || key === 'hidden') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
/** A fresh element id, for `<label for>`. */
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled control: `<div class="field"><label>…</label>{control}</div>`. */
export function field(labelText, control, { wide = false, hint } = {}) {
  if (!control.id) control.id = uid();
  return h('div', { class: wide ? 'field wide' : 'field' },
    h('label', { for: control.id }, labelText), control,
    hint ? h('span', { class: 'muted small' }, hint) : null);
}

/** A `<select>` of `[value, label]` pairs (or plain strings) with `selected` chosen. */
export function select(options, selected, props = {}) {
  const el = h('select', props);
  for (const option of options) {
    if (option && option.group) {
      const group = h('optgroup', { label: option.group });
      for (const [v, l] of option.options) group.append(h('option', { value: v, selected: v === selected }, l));
      el.append(group);
      continue;
    }
    const [value, label] = Array.isArray(option) ? option : [option, option];
    el.append(h('option', { value, selected: value === selected }, label));
  }
  if (selected !== undefined && selected !== null) el.value = selected;
  return el;
}

const numberFormat = new Intl.NumberFormat('en');
/** 12 345 style numbers; a dash for null. */
export function num(value) {
  return value === null || value === undefined ? '—' : numberFormat.format(value);
}

const instantFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
/** An RFC 3339 instant in the browser's zone; a dash for null. */
export function when(value) {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : instantFormat.format(date);
}

/** An instant, shown in the browser's zone with the exact value as its title. */
export function time(value) {
  return h('time', { datetime: value ?? '', title: value ?? '' }, when(value));
}

/** Text folded for searching: lower-cased the Turkish way, accents and dots dropped, so
 *  `musteri`, `MÜŞTERİ` and `Müşteri` all find `Müşteri`, and `ig` finds `İğdır`. */
export function fold(text) {
  return String(text ?? '')
    .toLocaleLowerCase('tr-TR')
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/ı/g, 'i');
}

/** `#/segments/x` for a segment id. */
export function segmentHref(id) {
  return `#/segments/${encodeURIComponent(id)}`;
}

/** `#/customers/x` for a customer id. */
export function customerHref(id) {
  return `#/customers/${encodeURIComponent(id)}`;
}

/** A notice paragraph for an error the API returned (or any other). */
export function errorNotice(error) {
  return h('p', { class: 'notice bad', role: 'alert' }, error?.message ?? String(error));
}

/** Saves `text` as a file the browser downloads. */
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
