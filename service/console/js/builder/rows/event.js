// An event condition: which events (one or more types, optional `where` filters on their
// properties, a period), what is measured over them (count, sum, average, …) and how it is
// compared — or, with `not_followed_by`, whether the latest one went without a follow-up
// (cart abandonment). Event types and properties come from /v1/schema.

import { h, select } from '../../dom.js';
import { MEASURES, MEASURE_OPS, columnLabel, durationText, eventLabel, periodText } from '../../labels.js';
import { filtersBlock, periodLine, types, typesLine } from '../events.js';
import { columnSelect, durationInput, fitValue, opSelect, valueControl, valueShape } from '../fields.js';
import { register } from '../registry.js';
import { comparisonText, testText } from '../words.js';

/** The measure's key and column: `'count'` → `['count', null]`, `{sum: 'amount'}` →
 *  `['sum', 'amount']`. */
export function measureOf(cond) {
  const m = cond.measure ?? 'count';
  if (typeof m === 'string') return [m, null];
  const [key] = Object.keys(m);
  return [key, m[key]];
}

const isInstant = (measure) => measure === 'first_time' || measure === 'last_time';

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
    filtersBlock(follow, ctx, 'nfb-', `${ctx.path}.not_followed_by`),
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
      filtersBlock(cond, ctx, '', ctx.path),
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
