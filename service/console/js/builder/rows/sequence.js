// A sequence (funnel): `{"sequence": [step, …], "within": "7d", "period": …}` — events of
// the steps' kinds in this order, each strictly later than the one before, the first step's
// in the period and the last at most `within` after the first (no limit without it). A step
// is an event type (or several) with optional `where` filters, edited with the same controls
// as the event row's; steps are added, removed and moved up and down, 2 to 10 of them.

import { h } from '../../dom.js';
import { durationText, periodText } from '../../labels.js';
import { filtersBlock, periodLine, types, typesLine } from '../events.js';
import { durationInput } from '../fields.js';
import { register } from '../registry.js';
import { stepText } from '../words.js';

/** The language's bounds on the number of steps (`definition::MIN_STEPS`, `MAX_STEPS`). */
const MIN_STEPS = 2;
const MAX_STEPS = 10;
const FIELDS = new Set(['sequence', 'within', 'period']);
const STEP_FIELDS = new Set(['event', 'where']);

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isType = (v) => typeof v === 'string';

/** Whether this row can edit `step` without losing any of it (else the JSON row keeps it). */
function editableStep(step) {
  if (!isObject(step) || !Object.keys(step).every((k) => STEP_FIELDS.has(k))) return false;
  const event = step.event;
  if (!(isType(event) || (Array.isArray(event) && event.length > 0 && event.every(isType)))) return false;
  return step.where === undefined || (Array.isArray(step.where) && step.where.every((f) => isObject(f) && isType(f.property)));
}

/** Keeps the keys in the language's order (`sequence`, `within`, `period`), so that the JSON
 *  the builder shows reads as the spec writes it, whatever was toggled last. */
function tidy(cond) {
  const { sequence, within, period } = cond;
  for (const key of Object.keys(cond)) delete cond[key];
  cond.sequence = sequence;
  if (within !== undefined) cond.within = within;
  if (period !== undefined) cond.period = period;
}

/** An event type of the store for a new step: `wanted` when the store has it, else the first
 *  type not yet used by a step. */
function pickType(ctx, wanted, used = []) {
  const present = ctx.schema.event_types.map((t) => t.event_type);
  if (present.includes(wanted)) return wanted;
  return present.find((t) => !used.includes(t)) ?? present[0] ?? wanted;
}

function stepBlock(cond, i, ctx) {
  const steps = cond.sequence;
  const step = steps[i];
  const path = `${ctx.path}.sequence[${i}]`;
  const n = i + 1;
  const line = typesLine(step, 'event', ctx, { lead: `Step ${n}`, keyPrefix: `step-${i}-` });
  const move = (d) => {
    [steps[i], steps[i + d]] = [steps[i + d], steps[i]];
    ctx.rerender();
  };
  line.append(h('span', { class: 'step-tools' },
    h('button', {
      type: 'button', class: 'icon', 'aria-label': `Move step ${n} up`, 'data-key': `step-${i}-up`,
      disabled: i === 0, onclick: () => move(-1),
    }, '↑'),
    h('button', {
      type: 'button', class: 'icon', 'aria-label': `Move step ${n} down`, 'data-key': `step-${i}-down`,
      disabled: i === steps.length - 1, onclick: () => move(1),
    }, '↓'),
    h('button', {
      type: 'button', class: 'icon danger', 'aria-label': `Remove step ${n}`, 'data-key': `step-${i}-remove`,
      disabled: steps.length <= MIN_STEPS,
      title: steps.length <= MIN_STEPS ? `A sequence has at least ${MIN_STEPS} steps` : undefined,
      onclick: () => { steps.splice(i, 1); ctx.rerender(); },
    }, '✕')));
  return h('li', { class: 'step', 'data-path': path, 'data-step': i, role: 'group', 'aria-label': `Step ${n}` },
    line,
    filtersBlock(step, ctx, `step-${i}-`, path),
    h('ul', { class: 'problems' }));
}

function withinLine(cond, ctx) {
  const on = cond.within !== undefined;
  const line = h('div', { class: 'line', 'data-path': `${ctx.path}.within` },
    h('label', { class: 'check' },
      h('input', {
        type: 'checkbox', checked: on, 'data-key': 'within-on',
        onchange: (e) => {
          if (e.target.checked) cond.within = '7d';
          else delete cond.within;
          tidy(cond);
          ctx.rerender();
        },
      }),
      'All steps within'));
  if (on) {
    line.append(
      durationInput(cond.within, (v) => { cond.within = v; ctx.changed(); }, { label: 'Longest time from the first step to the last', key: 'within' }),
      h('span', { class: 'muted small' }, 'from the first step’s event to the last’s'));
  } else {
    line.append(h('span', { class: 'muted small' }, 'no time limit between the first and the last step'));
  }
  line.append(h('ul', { class: 'problems' }));
  return line;
}

register({
  kind: 'sequence',
  label: 'Sequence (funnel)',
  title: () => 'Sequence (funnel): events in this order',
  matches: (c) => isObject(c) && Array.isArray(c.sequence)
    && Object.keys(c).every((k) => FIELDS.has(k))
    && (c.within === undefined || isType(c.within))
    && c.sequence.every(editableStep),
  create(ctx) {
    const first = pickType(ctx, 'product_viewed');
    return { sequence: [{ event: first }, { event: pickType(ctx, 'product_added_to_cart', [first]) }], period: { last: '30d' } };
  },
  render(cond, ctx) {
    const steps = cond.sequence;
    const list = h('ol', { class: 'steps' }, steps.map((_, i) => stepBlock(cond, i, ctx)));
    const add = h('button', {
      type: 'button', class: 'link', 'data-key': 'add-step', disabled: steps.length >= MAX_STEPS,
      title: steps.length >= MAX_STEPS ? `A sequence has at most ${MAX_STEPS} steps` : undefined,
      onclick: () => {
        const used = steps.flatMap((s) => types(s.event));
        steps.push({ event: pickType(ctx, used.includes('order_created') ? '' : 'order_created', used) });
        ctx.rerender();
      },
    }, '+ add a step');
    return h('div', {},
      h('p', { class: 'muted small' }, 'Each step’s event comes strictly later than the one before it.'),
      h('div', { class: 'steps-block', 'data-path': `${ctx.path}.sequence` },
        list, h('div', { class: 'line' }, add), h('ul', { class: 'problems' })),
      withinLine(cond, ctx),
      periodLine(cond, ctx, { lead: 'First step' }));
  },
  describe(cond, ctx) {
    const chain = cond.sequence.map((s) => stepText(s, ctx.schema)).join(', then ');
    const within = cond.within === undefined ? 'with no time limit' : `all within ${durationText(cond.within)}`;
    return `In this order: ${chain}, ${within}, the first ${periodText(cond.period)}`;
  },
});
