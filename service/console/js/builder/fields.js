// The builder's value controls: which shape of value an operator takes on a column type, a
// default of each shape, and the control that edits it. Controls hand back JSON values as
// the segment language wants them; what cannot be read (a number typed as "abc") is handed
// on as typed, so that the API's validation says what is wrong at the row.

import { h, select, uid } from '../dom.js';
import { columnLabel, opLabel } from '../labels.js';
import { attachSuggestions } from './suggest.js';

export const LIST_OPS = new Set(['in', 'not_in', 'domain_in', 'has_any', 'has_all', 'has_none']);
const NO_VALUE = new Set(['is_set', 'is_not_set']);
const TEXT_OPS = new Set(['eq', 'neq', 'in', 'not_in', 'contains', 'not_contains', 'starts_with', 'ends_with', 'domain_in']);

/** The shape of value `op` takes on a column (or measure) of type `kind`. */
export function valueShape(kind, op, value) {
  if (NO_VALUE.has(op)) return 'none';
  if (op === 'top_percent' || op === 'bottom_percent') return 'percent';
  if (op === 'within_last' || op === 'older_than') return 'duration';
  if (LIST_OPS.has(op)) return 'list';
  switch (kind) {
    case 'number': return op === 'between' ? 'number-range' : 'number';
    case 'timestamp': return op === 'between' ? 'instant-range' : 'instant';
    case 'boolean': return 'boolean';
    default: return Array.isArray(value) ? 'list' : 'text';
  }
}

/** A value to start a shape with. */
export function defaultValue(shape, { number = 0 } = {}) {
  switch (shape) {
    case 'none': return undefined;
    case 'percent': return 10;
    case 'duration': return '30d';
    case 'list': return [];
    case 'number': return number;
    case 'number-range': return [0, 100];
    case 'instant': return daysAgo(30);
    case 'instant-range': return [daysAgo(30), daysAgo(0)];
    case 'boolean': return true;
    default: return '';
  }
}

/** `YYYY-MM-DD`, `n` days before today (the browser's date). */
export function daysAgo(n) {
  const d = new Date(Date.now() - n * 86_400_000);
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** A typed number as JSON: `37,5` and `37.5` are 37.5; anything else stays text. */
export function readNumber(text) {
  const t = String(text).trim().replace(/^(-?\d+),(\d+)$/, '$1.$2');
  return /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Number(t) : t;
}

/** Sets `test.value` to fit `op` on a column of `kind`, keeping a value that still fits. */
export function fitValue(test, kind, op, { number = 0 } = {}) {
  const before = valueShape(kind, test.op, test.value);
  const after = valueShape(kind, op, test.value);
  test.op = op;
  if (after === 'none') delete test.value;
  else if (before !== after || test.value === undefined) test.value = defaultValue(after, { number });
  if (!TEXT_OPS.has(op)) delete test.ignore_case;
}

/** An operator `<select>` (the ops listed, words for `kind`). */
export function opSelect(ops, op, { kind, onchange, key = 'op', label = 'Operator' }) {
  const instant = kind === 'timestamp' || kind === 'instant';
  const options = ops.map((o) => [o, opLabel(o, { instant })]);
  if (op && !ops.includes(op)) options.push([op, `${op} (not allowed here)`]);
  return select(options, op, { 'aria-label': label, 'data-key': key, onchange: (e) => onchange(e.target.value) });
}

/** The control for a value of `shape`; `onchange(jsonValue)` on every edit. `suggest`
 *  (`{table, column, kind}`) offers the values the store has. */
export function valueControl(shape, value, onchange, { label = 'Value', suggest, key = 'value' } = {}) {
  switch (shape) {
    case 'none': return null;
    case 'text': {
      const input = h('input', {
        type: 'text', value: value ?? '', 'aria-label': label, 'data-key': key,
        oninput: (e) => onchange(e.target.value),
      });
      if (suggest) attachSuggestions(input, suggest);
      return input;
    }
    case 'list': return chips(Array.isArray(value) ? value : value ? [value] : [], onchange, { label, suggest, key });
    case 'number': return numberInput(value, onchange, { label, key });
    case 'percent': return h('span', { class: 'inline' }, numberInput(value, onchange, { label: `${label} (percent)`, key }), '%');
    case 'number-range': return range(value, onchange, (v, f, o) => numberInput(v, f, o), { label, key });
    case 'instant': return instantInput(value, onchange, { label, key });
    case 'instant-range': return range(value, onchange, (v, f, o) => instantInput(v, f, o), { label, key });
    case 'duration': return durationInput(value, onchange, { label, key });
    case 'boolean':
      return select([['true', 'true'], ['false', 'false']], String(value ?? true), {
        'aria-label': label, 'data-key': key, onchange: (e) => onchange(e.target.value === 'true'),
      });
    default: return null;
  }
}

function numberInput(value, onchange, { label, key }) {
  return h('input', {
    type: 'text', inputmode: 'decimal', class: 'num', size: 8, value: value ?? '',
    'aria-label': label, 'data-key': key, oninput: (e) => onchange(readNumber(e.target.value)),
  });
}

function instantInput(value, onchange, { label, key }) {
  const plainDate = value === undefined || value === '' || /^\d{4}-\d{2}-\d{2}$/.test(String(value));
  return h('input', {
    type: plainDate ? 'date' : 'text', value: value ?? '', 'aria-label': label, 'data-key': key,
    placeholder: plainDate ? undefined : 'YYYY-MM-DD or 2025-11-28T09:30:00Z',
    oninput: (e) => onchange(e.target.value),
  });
}

function range(value, onchange, control, { label, key }) {
  const pair = Array.isArray(value) && value.length === 2 ? [...value] : ['', ''];
  return h('span', { class: 'inline' },
    control(pair[0], (v) => { pair[0] = v; onchange([...pair]); }, { label: `${label}: from`, key: `${key}-from` }),
    'and',
    control(pair[1], (v) => { pair[1] = v; onchange([...pair]); }, { label: `${label}: to`, key: `${key}-to` }));
}

const UNITS = [['m', 'minutes'], ['h', 'hours'], ['d', 'days'], ['w', 'weeks']];

/** A duration (`30d`) as a number and a unit. */
export function durationInput(value, onchange, { label = 'Duration', key = 'duration' } = {}) {
  const match = /^(.*?)([mhdw])$/.exec(String(value ?? ''));
  let amount = match ? match[1] : String(value ?? '');
  let unit = match ? match[2] : 'd';
  const emit = () => onchange(`${amount.trim()}${unit}`);
  return h('span', { class: 'inline' },
    h('input', {
      type: 'text', inputmode: 'numeric', size: 4, value: amount, 'aria-label': `${label}: number`, 'data-key': `${key}-n`,
      oninput: (e) => { amount = e.target.value; emit(); },
    }),
    select(UNITS, unit, {
      'aria-label': `${label}: unit`, 'data-key': `${key}-unit`,
      onchange: (e) => { unit = e.target.value; emit(); },
    }));
}

/** A list of texts as chips: type and press Enter (or a comma) to add, ✕ to remove. */
export function chips(values, onchange, { label = 'Values', suggest, key = 'chips' } = {}) {
  const list = [...values];
  const wrap = h('span', { class: 'chips' });
  const input = h('input', {
    type: 'text', 'aria-label': `${label}: type a value and press Enter`, 'data-key': key,
  });
  if (suggest) attachSuggestions(input, suggest);
  const draw = () => {
    for (const chip of wrap.querySelectorAll('.chip')) chip.remove();
    list.forEach((v, i) => {
      input.before(h('span', { class: 'chip', 'data-value': v }, v,
        h('button', {
          type: 'button', 'aria-label': `Remove ${v}`,
          onclick: () => { list.splice(i, 1); draw(); onchange([...list]); input.focus(); },
        }, '×')));
    });
  };
  const add = () => {
    const v = input.value.replace(/,$/, '').trim();
    input.value = '';
    if (!v || list.includes(v)) return;
    list.push(v);
    draw();
    onchange([...list]);
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || (e.key === ',' && !e.isComposing)) {
      e.preventDefault();
      add();
    } else if (e.key === 'Backspace' && input.value === '' && list.length) {
      list.pop();
      draw();
      onchange([...list]);
    }
  });
  // A value picked from the suggestions is added at once.
  input.addEventListener('input', (e) => {
    if (e.inputType === 'insertReplacementText') add();
  });
  input.addEventListener('blur', add);
  wrap.append(input);
  draw();
  return wrap;
}

/** A column `<select>` of schema columns (with their labels); a name the store lacks stays
 *  selectable, marked. */
export function columnSelect(columns, name, { onchange, label = 'Column', key = 'column', filter = () => true }) {
  const options = columns.filter(filter).map((c) => [c.name, `${columnLabel(c.name)}${columnLabel(c.name) === c.name ? '' : ` · ${c.name}`}`]);
  if (name && !options.some(([v]) => v === name)) options.unshift([name, `${name} (not in the store)`]);
  return select(options, name, { 'aria-label': label, 'data-key': key, onchange: (e) => onchange(e.target.value) });
}

/** The control pair `[op] [value]` (and "ignore case") of a test on a column: an attribute
 *  condition or a `where` filter. `test` is mutated; `redraw` when the shape changed. */
export function testControls(test, column, { changed, redraw, suggest, keyPrefix = '' }) {
  const kind = column?.type ?? 'text';
  const ops = column?.operators ?? [test.op];
  const parts = [opSelect(ops, test.op, {
    kind, key: `${keyPrefix}op`,
    onchange: (op) => { fitValue(test, kind, op); redraw(); },
  })];
  const shape = valueShape(kind, test.op, test.value);
  parts.push(valueControl(shape, test.value, (v) => { test.value = v; changed(); }, {
    key: `${keyPrefix}value`, suggest: kind === 'text' || kind === 'text_list' ? suggest : undefined,
  }));
  if (TEXT_OPS.has(test.op) && kind === 'text') {
    const id = uid('ic');
    parts.push(h('span', { class: 'check' },
      h('input', {
        type: 'checkbox', id, checked: test.ignore_case === true, 'data-key': `${keyPrefix}ignore-case`,
        onchange: (e) => { if (e.target.checked) test.ignore_case = true; else delete test.ignore_case; changed(); },
      }),
      h('label', { for: id, class: 'check' }, 'ignore case')));
  }
  return parts;
}

/** The operator a fresh test on a column of `kind` starts with. */
export function firstOp(kind, operators) {
  const wanted = { text: 'eq', number: 'gte', timestamp: 'within_last', text_list: 'has_any', boolean: 'eq' }[kind];
  return operators.includes(wanted) ? wanted : operators[0];
}
