// The builder's row kinds. Each kind of condition is one self-contained module under
// `rows/` that registers itself here with:
//
//   kind      short name, also the row's CSS class (`kind-event`)
//   label     what the "+ …" button and the row's head say
//   matches   (condition) => whether this kind edits that JSON condition
//   create    (ctx) => a new condition of this kind (omit it to offer no "+" button)
//   render    (condition, ctx) => the row's body; edits mutate `condition` in place and call
//             ctx.changed(), or ctx.rerender() when the row's own controls change shape
//   describe  (condition, ctx) => a sentence, or {text, children: [conditions]} for groups
//
// `ctx` holds `schema` (GET /v1/schema), `segments` (GET /v1/segments), `selfId`, `path`
// (the condition's JSON path, where the API's validation problems point) and the callbacks
// above, plus `child(condition, path, replace)` to render a nested condition. Adding a kind
// (a "sequence" row, say) is one new module and one import line in `rows/index.js`.

import { h } from '../dom.js';

const kinds = [];
let fallback = null;

/** Adds a kind; the first registered kind that matches a condition edits it. */
export function register(kind) {
  if (kind.fallback) fallback = kind;
  else kinds.push(kind);
}

/** The kind that edits `condition` (the raw JSON row when no kind knows it). */
export function kindOf(condition) {
  return kinds.find((k) => k.matches(condition)) ?? fallback;
}

/** The kinds a user can add, in registration order. */
export function addable() {
  return kinds.filter((k) => typeof k.create === 'function');
}

/** The sentence tree of a condition: `{text, children}`. */
export function describe(condition, ctx) {
  const said = kindOf(condition).describe(condition, ctx);
  if (typeof said === 'string') return { text: said, children: [] };
  return { text: said.text, children: (said.children ?? []).map((c) => describe(c, ctx)) };
}

/** Renders one condition as a row: a head with its kind and tools (NOT, move, remove), the
 *  kind's body, and the list its validation problems are shown in. */
export function renderRow(condition, ctx) {
  const kind = kindOf(condition);
  const row = h('div', {
    class: `row kind-${kind.kind}`,
    'data-path': ctx.path,
    'data-kind': kind.kind,
    role: 'group',
    'aria-label': `${kind.label} condition`,
  });
  const rowCtx = {
    ...ctx,
    rerender() {
      const focused = document.activeElement;
      const key = row.contains(focused) ? focused?.dataset?.key : null;
      const fresh = renderRow(condition, ctx);
      row.replaceWith(fresh);
      if (key) fresh.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
      ctx.changed();
    },
  };
  const head = h('div', { class: 'row-head' },
    h('span', { class: 'row-kind' }, kind.title ? kind.title(condition) : kind.label),
    tools(condition, ctx));
  const body = h('div', { class: 'row-body' }, kind.render(condition, rowCtx));
  row.append(head, body, h('ul', { class: 'problems', 'aria-live': 'polite' }));
  return row;
}

function tools(condition, ctx) {
  const bar = h('div', { class: 'row-tools' });
  if (ctx.nested) return bar;
  if (ctx.replace) {
    const negated = 'not' in condition && Object.keys(condition).length === 1;
    bar.append(h('button', {
      type: 'button', class: 'icon', 'aria-pressed': negated ? 'true' : 'false',
      title: negated ? 'Remove the NOT' : 'Negate: true when this is false',
      onclick: () => ctx.replace(negated ? condition.not : { not: condition }),
    }, 'NOT'));
  }
  if (ctx.move && ctx.count > 1) {
    bar.append(
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Move condition up', disabled: ctx.index === 0, onclick: () => ctx.move(-1) }, '↑'),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Move condition down', disabled: ctx.index === ctx.count - 1, onclick: () => ctx.move(1) }, '↓'));
  }
  if (ctx.remove) {
    bar.append(h('button', { type: 'button', class: 'icon danger', 'aria-label': 'Remove condition', onclick: () => ctx.remove() }, '✕'));
  }
  return bar;
}

/** Where a validation problem belongs: the element with the longest `data-path` that is a
 *  prefix of the problem's path (at a `.` or `[` boundary). */
export function placeFor(container, path) {
  let best = null;
  let bestLength = -1;
  for (const el of container.querySelectorAll('[data-path]')) {
    const p = el.dataset.path;
    const prefix = p === '' || path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`);
    if (prefix && p.length > bestLength) {
      best = el;
      bestLength = p.length;
    }
  }
  return best;
}

/** Shows the API's validation problems (`{path, found, allowed, message}`) at the rows and
 *  fields they point at; the ones without a place go to `elsewhere`. Clears earlier ones. */
export function showProblems(container, problems, elsewhere) {
  for (const list of container.querySelectorAll('ul.problems')) list.replaceChildren();
  for (const el of container.querySelectorAll('.has-problem')) el.classList.remove('has-problem');
  elsewhere?.replaceChildren();
  for (const problem of problems) {
    const place = placeFor(container, problem.path ?? '');
    const list = place?.querySelector(':scope > ul.problems') ?? elsewhere;
    if (!list) continue;
    place?.classList.add('has-problem');
    place?.closest('.row')?.classList.add('has-problem');
    list.append(h('li', { 'data-problem-path': problem.path ?? '' },
      h('span', { class: 'message' }, problem.message ?? ''),
      problem.allowed ? h('span', { class: 'allowed muted' }, ` — allowed: ${problem.allowed}`) : null));
  }
}
