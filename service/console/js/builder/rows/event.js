// An event condition: which events (one or more types, optional `where` filters on their
// properties, a period), what is measured over them (count, sum, average, …) and how it is
// compared — or, with `not_followed_by`, whether the latest one went without a follow-up
// (cart abandonment). Event types and properties come from /v1/schema.

import { h, select } from '../../dom.js';
import { EVENT_GROUPS, MEASURES, MEASURE_OPS, columnLabel, durationText, eventLabel, periodText } from '../../labels.js';
import { columnSelect, daysAgo, durationInput, fitValue, opSelect, testControls, valueControl, valueShape } from '../fields.js';
import { register } from '../registry.js';
import { comparisonText, testText } from '../words.js';
import { freshTest } from './attribute.js';

const types = (event) => (Array.isArray(event) ? event : [event]);
const typesJson = (list) => (list.length === 1 ? list[0] : list);

/** The measure's key and column: `'count'` → `['count', null]`, `{sum: 'amount'}` →
 *  `['sum', 'amount']`. */
export function measureOf(cond) {
  const m = cond.measure ?? 'count';
  if (typeof m === 'string') return [m, null];
  const [key] = Object.keys(m);
  return [key, m[key]];
}

const isInstant = (measure) => measure === 'first_time' || measure === 'last_time';

/** A `<select>` of event types: those the store has (grouped as ikas groups them, with their
 *  counts), and the current one even when the store has none. */
function eventSelect(schema, value, { onchange, label, key }) {
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
function typesLine(cond, field, ctx, { lead, keyPrefix }) {
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

/** The `where` filters of `owner` (the condition or its follow-up). */
function filtersBlock(owner, ctx, keyPrefix) {
  const events = ctx.schema.events;
  const filters = owner.where ?? [];
  const block = h('div', { class: 'filters' });
  filters.forEach((f, i) => {
    const column = events.find((c) => c.name === f.property);
    block.append(h('div', { class: 'filter', 'data-path': `${ctx.path}${keyPrefix ? '.not_followed_by' : ''}.where[${i}]` },
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

function periodLine(cond, ctx) {
  const kind = periodKind(cond.period);
  const set = (p) => { if (p === 'all_time') delete cond.period; else cond.period = p; };
  const line = h('div', { class: 'line', 'data-path': `${ctx.path}.period` },
    h('span', { class: 'lead' }, 'Period'),
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

function measureLine(cond, ctx) {
  const [measure, column] = measureOf(cond);
  const kind = isInstant(measure) ? 'timestamp' : 'number';
  const numeric = ctx.schema.events.filter((c) => c.type === 'number');
  const line = h('div', { class: 'line' },
    h('span', { class: 'lead' }, 'Measure'),
    select(MEASURES.map(([k, l]) => [k, l]), measure, {
      'aria-label': 'Measure', 'data-key': 'measure',
      onchange: (e) => {
        const next = e.target.value;
        const [, , takes] = MEASURES.find(([k]) => k === next);
        if (next === 'count') delete cond.measure;
        else if (takes === 'number') cond.measure = { [next]: numeric.some((c) => c.name === column) ? column : (numeric.find((c) => c.name === 'amount') ?? numeric[0])?.name };
        else if (takes === 'any') cond.measure = { [next]: column ?? 'product_id' };
        else cond.measure = next;
        const nextKind = isInstant(next) ? 'timestamp' : 'number';
        const ops = MEASURE_OPS[isInstant(next) ? 'instant' : 'number'];
        const op = ops.includes(cond.op) ? cond.op : (isInstant(next) ? 'within_last' : 'gte');
        if (nextKind !== kind) delete cond.value;
        fitValue(cond, nextKind, op, { number: 1 });
        ctx.rerender();
      },
    }));
  const takes = MEASURES.find(([k]) => k === measure)?.[2];
  if (takes) {
    line.append(columnSelect(ctx.schema.events, column, {
      label: 'Measured property', key: 'measure-column',
      filter: (c) => takes === 'any' || c.type === 'number',
      onchange: (name) => { cond.measure = { [measure]: name }; ctx.changed(); },
    }));
  }
  const ops = MEASURE_OPS[isInstant(measure) ? 'instant' : 'number'];
  line.append(opSelect(ops, cond.op, {
    kind, label: 'Comparison',
    onchange: (op) => { fitValue(cond, kind, op, { number: 1 }); ctx.rerender(); },
  }));
  line.append(valueControl(valueShape(kind, cond.op, cond.value), cond.value, (v) => { cond.value = v; ctx.changed(); }, { label: 'Measured value' }));
  return line;
}

function followUpLines(cond, ctx) {
  const follow = cond.not_followed_by;
  return [
    typesLine(follow, 'event', ctx, { lead: 'Not followed by', keyPrefix: 'nfb-' }),
    h('div', { class: 'line' }, h('span', { class: 'lead' }, 'within'),
      durationInput(follow.within, (v) => { follow.within = v; ctx.changed(); }, { label: 'Follow-up window', key: 'nfb-within' }),
      h('span', { class: 'muted small' }, 'of the latest matching event')),
    filtersBlock(follow, ctx, 'nfb-'),
  ];
}

register({
  kind: 'event',
  label: 'Event',
  title: () => 'Event',
  matches: (c) => c && typeof c === 'object' && (typeof c.event === 'string' || Array.isArray(c.event)),
  create(ctx) {
    const first = ctx.schema.event_types[0]?.event_type ?? 'order_created';
    return { event: first, op: 'gte', value: 1 };
  },
  render(cond, ctx) {
    const abandonment = cond.not_followed_by !== undefined;
    const toggle = h('label', { class: 'check' },
      h('input', {
        type: 'checkbox', checked: abandonment, 'data-key': 'nfb',
        onchange: (e) => {
          if (e.target.checked) {
            for (const k of ['measure', 'op', 'value']) delete cond[k];
            const order = ctx.schema.event_types.some((t) => t.event_type === 'order_created') ? 'order_created' : types(cond.event)[0];
            cond.not_followed_by = { event: order, within: '24h' };
          } else {
            delete cond.not_followed_by;
            Object.assign(cond, { op: 'gte', value: 1 });
          }
          ctx.rerender();
        },
      }),
      'Not followed by another event (e.g. cart abandonment)');
    return h('div', { class: 'row-body' },
      typesLine(cond, 'event', ctx, { lead: 'Event', keyPrefix: '' }),
      filtersBlock(cond, ctx, ''),
      periodLine(cond, ctx),
      h('div', { class: 'line' }, toggle),
      abandonment ? followUpLines(cond, ctx) : measureLine(cond, ctx));
  },
  describe(cond, ctx) {
    const said = (list) => types(list).map((t) => `“${eventLabel(t)}”`).join(' or ');
    const names = said(cond.event);
    const where = (cond.where ?? []).map((f) => testText(f.property, f, ctx.schema.events.find((c) => c.name === f.property)?.type));
    const filtered = where.length ? ` where ${where.join(' and ')}` : '';
    const period = periodText(cond.period);
    if (cond.not_followed_by) {
      const f = cond.not_followed_by;
      const fw = (f.where ?? []).map((x) => testText(x.property, x, undefined));
      return `The latest ${names}${filtered} ${period} was not followed by ${said(f.event)}${fw.length ? ` where ${fw.join(' and ')}` : ''} within ${durationText(f.within)}`;
    }
    const [measure, column] = measureOf(cond);
    const label = MEASURES.find(([k]) => k === measure)?.[1] ?? measure;
    const subject = `${label}${column ? ` ${columnLabel(column)}` : ''} of ${names}${filtered} ${period}`;
    const op = cond.op ?? 'gte';
    const value = cond.value ?? 1;
    return comparisonText(subject, op, value, { instant: isInstant(measure) });
  },
});
