// The controls of events shared by the event row and the sequence row's steps: a choice of
// event types (one or more, "or" between them), the `where` filters on their properties and
// the period. Each edits its owner object in place, as the row kinds do (see registry.js).

import { h, select } from '../dom.js';
import { EVENT_GROUPS, eventLabel } from '../labels.js';
import { columnSelect, daysAgo, durationInput, testControls, valueControl } from './fields.js';
import { freshTest } from './rows/attribute.js';

/** An `event` field as a list of types (`"a"` → `["a"]`). */
export const types = (event) => (Array.isArray(event) ? event : [event]);
/** A list of types as the language writes it: one type alone, several as a list. */
export const typesJson = (list) => (list.length === 1 ? list[0] : list);

/** A `<select>` of event types: those the store has (grouped as ikas groups them, with their
 *  counts), and the current one even when the store has none. */
export function eventSelect(schema, value, { onchange, label, key }) {
  const present = new Map(schema.event_types.map((t) => [t.event_type, t.count]));
  const labelOf = (t) => `${eventLabel(t)}${eventLabel(t) === t ? '' : ` · ${t}`} (${present.has(t) ? present.get(t).toLocaleString('en') : 'none in the store'})`;
  const known = new Set(EVENT_GROUPS.flatMap(([, list]) => list));
  const groups = EVENT_GROUPS
    .map(([group, list]) => ({ group, options: list.filter((t) => present.has(t) || t === value).map((t) => [t, labelOf(t)]) }))
    .filter((g) => g.options.length);
  const others = [...present.keys(), value].filter((t, i, all) => t && !known.has(t) && all.indexOf(t) === i);
  if (others.length) groups.push({ group: 'Other types in the store', options: others.map((t) => [t, labelOf(t)]) });
  return select(groups, value, { 'aria-label': label, 'data-key': key, onchange: (e) => onchange(e.target.value) });
}

/** Event types (one select each, "or" between them), `+ or` to add one. */
export function typesLine(cond, field, ctx, { lead, keyPrefix }) {
  const list = types(cond[field]);
  const line = h('div', { class: 'line' }, h('span', { class: 'lead' }, lead));
  list.forEach((t, i) => {
    if (i > 0) line.append(h('span', {}, 'or'));
    line.append(eventSelect(ctx.schema, t, {
      label: i === 0 ? `${lead}: event type` : `${lead}: event type ${i + 1}`, key: `${keyPrefix}type-${i}`,
      onchange: (v) => { list[i] = v; cond[field] = typesJson(list); ctx.changed(); },
    }));
    if (i > 0) {
      line.append(h('button', {
        type: 'button', class: 'icon', 'aria-label': `Remove event type ${t}`,
        onclick: () => { list.splice(i, 1); cond[field] = typesJson(list); ctx.rerender(); },
      }, '✕'));
    }
  });
  line.append(h('button', {
    type: 'button', class: 'link', 'data-key': `${keyPrefix}add-type`,
    onclick: () => {
      const next = ctx.schema.event_types.map((t) => t.event_type).find((t) => !list.includes(t)) ?? list[0];
      list.push(next);
      cond[field] = typesJson(list);
      ctx.rerender();
    },
  }, '+ or another type'));
  return line;
}

/** The `where` filters of `owner` (a condition, its follow-up or a sequence step), whose JSON
 *  path is `path` (each filter's problems are shown at `path.where[i]`). */
export function filtersBlock(owner, ctx, keyPrefix, path) {
  const events = ctx.schema.events;
  const filters = owner.where ?? [];
  const block = h('div', { class: 'filters' });
  filters.forEach((f, i) => {
    const column = events.find((c) => c.name === f.property);
    block.append(h('div', { class: 'filter', 'data-path': `${path}.where[${i}]` },
      h('span', { class: 'lead muted small' }, i === 0 ? 'where' : 'and'),
      columnSelect(events, f.property, {
        label: 'Property', key: `${keyPrefix}where-${i}-property`,
        onchange: (name) => {
          const next = events.find((c) => c.name === name);
          filters[i] = { property: name, ...freshTest(next) };
          ctx.rerender();
        },
      }),
      testControls(f, column, {
        changed: ctx.changed, redraw: ctx.rerender, keyPrefix: `${keyPrefix}where-${i}-`,
        suggest: { table: 'events', column: f.property, kind: column?.type },
      }),
      h('button', {
        type: 'button', class: 'icon', 'aria-label': `Remove the filter on ${f.property}`,
        onclick: () => {
          filters.splice(i, 1);
          if (filters.length) owner.where = filters;
          else delete owner.where;
          ctx.rerender();
        },
      }, '✕'),
      h('ul', { class: 'problems' })));
  });
  block.append(h('div', {}, h('button', {
    type: 'button', class: 'link', 'data-key': `${keyPrefix}add-filter`,
    onclick: () => {
      const column = events.find((c) => c.name === 'product_id') ?? events[0];
      filters.push({ property: column.name, ...freshTest(column) });
      owner.where = filters;
      ctx.rerender();
    },
  }, '+ filter by a property')));
  return block;
}

const PERIODS = [
  ['all_time', 'over all time'], ['last', 'in the last'], ['before_last', 'before the last'],
  ['since', 'since'], ['between', 'between'],
];

function periodKind(period) {
  if (period === undefined || period === 'all_time') return 'all_time';
  return Object.keys(period)[0];
}

/** The period of `cond` (an event or sequence condition at `ctx.path`); `lead` heads the line. */
export function periodLine(cond, ctx, { lead = 'Period' } = {}) {
  const kind = periodKind(cond.period);
  const set = (p) => { if (p === 'all_time') delete cond.period; else cond.period = p; };
  const line = h('div', { class: 'line', 'data-path': `${ctx.path}.period` },
    h('span', { class: 'lead' }, lead),
    select(PERIODS, kind, {
      'aria-label': 'Period', 'data-key': 'period',
      onchange: (e) => {
        const next = e.target.value;
        set({ all_time: 'all_time', last: { last: '30d' }, before_last: { before_last: '30d' }, since: { since: daysAgo(30) }, between: { between: [daysAgo(30), daysAgo(0)] } }[next]);
        ctx.rerender();
      },
    }));
  if (kind === 'last' || kind === 'before_last') {
    line.append(durationInput(cond.period[kind], (v) => { cond.period[kind] = v; ctx.changed(); }, { label: 'Period length', key: 'period-length' }));
  } else if (kind === 'since') {
    line.append(valueControl('instant', cond.period.since, (v) => { cond.period.since = v; ctx.changed(); }, { label: 'Since', key: 'period-since' }));
  } else if (kind === 'between') {
    line.append(valueControl('instant-range', cond.period.between, (v) => { cond.period.between = v; ctx.changed(); }, { label: 'Period', key: 'period-between' }),
      h('span', { class: 'muted small' }, '(end day excluded)'));
  }
  line.append(h('ul', { class: 'problems' }));
  return line;
}
