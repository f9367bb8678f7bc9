// A group: `{"all": [...]}` (every condition holds) or `{"any": [...]}` (at least one does).
// "None of" is a group under NOT (the row's NOT button).

import { h, select } from '../../dom.js';
import { addable, register, renderRow } from '../registry.js';

const keyOf = (c) => ('all' in c ? 'all' : 'any');

/** The add-bar: one button per kind that can be created. */
export function addBar(onAdd, prefix = '+ ') {
  return h('div', { class: 'add-bar', role: 'group', 'aria-label': 'Add a condition' },
    addable().map((kind) => h('button', {
      type: 'button', 'data-add': kind.kind, onclick: () => onAdd(kind),
    }, `${prefix}${kind.label}`)));
}

/** Renders `items[i]` as a child row of a list (group or root), with its tools. */
export function childRow(items, i, path, ctx, redraw) {
  return renderRow(items[i], {
    ...ctx,
    nested: false,
    path,
    index: i,
    count: items.length,
    replace: (next) => { items[i] = next; redraw(); },
    remove: () => { items.splice(i, 1); redraw(); },
    move: (d) => {
      const j = i + d;
      [items[i], items[j]] = [items[j], items[i]];
      redraw();
    },
  });
}

/** Focuses the first control of the last row in `container` (after adding one). */
export function focusLast(container) {
  const rows = container.querySelectorAll(':scope > .children > .row');
  rows[rows.length - 1]?.querySelector('select, input, textarea, button')?.focus();
}

register({
  kind: 'group',
  label: 'Group (AND / OR)',
  title: (c) => (keyOf(c) === 'all' ? 'All of (AND)' : 'Any of (OR)'),
  matches: (c) => c && typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 1 && ('all' in c || 'any' in c) && Array.isArray(c.all ?? c.any),
  create: () => ({ any: [] }),
  render(cond, ctx) {
    const key = keyOf(cond);
    const items = cond[key];
    const children = h('div', { class: 'children' });
    const body = h('div', {},
      h('div', { class: 'line' },
        select([['all', 'All'], ['any', 'Any']], key, {
          'aria-label': 'Combine the conditions with', 'data-key': 'combine',
          onchange: (e) => {
            const next = e.target.value;
            if (next === key) return;
            cond[next] = cond[key];
            delete cond[key];
            ctx.rerender();
          },
        }),
        h('span', {}, key === 'all' ? 'of these conditions hold (AND)' : 'of these conditions holds (OR)')),
      children);
    items.forEach((_, i) => children.append(childRow(items, i, `${ctx.path}.${key}[${i}]`, ctx, () => ctx.rerender())));
    if (!items.length) children.append(h('p', { class: 'muted small' }, 'No conditions yet: add one below.'));
    body.append(addBar((kind) => {
      items.push(kind.create(ctx));
      ctx.rerender();
      const row = document.querySelector(`[data-path="${CSS.escape(ctx.path)}"]`);
      if (row) focusLast(row.querySelector('.row-body > div') ?? row);
    }));
    return body;
  },
  describe(cond) {
    const key = keyOf(cond);
    return { text: key === 'all' ? 'All of these hold:' : 'At least one of these holds:', children: cond[key] };
  },
});
