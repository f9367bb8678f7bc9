// A customer attribute: `{"attribute": column, "op", "value", "ignore_case"?}`, a test of the
// customer's latest profile row (consent, tags, group, e-mail domain, B2B status, language,
// dates, status, any custom column). The columns and their operators come from /v1/schema.

import { h } from '../../dom.js';
import { columnSelect, defaultValue, firstOp, testControls, valueShape } from '../fields.js';
import { register } from '../registry.js';
import { testText } from '../words.js';

/** A fresh test of `column`: its type's first operator and a default value. */
export function freshTest(column) {
  const op = firstOp(column.type, column.operators);
  const shape = valueShape(column.type, op);
  const test = { op };
  const value = defaultValue(shape);
  if (value !== undefined) test.value = value;
  return test;
}

register({
  kind: 'attribute',
  label: 'Customer attribute',
  matches: (c) => c && typeof c === 'object' && typeof c.attribute === 'string',
  create(ctx) {
    const columns = ctx.schema.customers;
    const column = columns.find((c) => c.name === 'email_consent') ?? columns[0];
    return { attribute: column.name, ...freshTest(column) };
  },
  render(cond, ctx) {
    const columns = ctx.schema.customers;
    const column = columns.find((c) => c.name === cond.attribute);
    return h('div', { class: 'line' },
      columnSelect(columns, cond.attribute, {
        label: 'Customer attribute', key: 'attribute',
        onchange: (name) => {
          const next = columns.find((c) => c.name === name);
          for (const k of ['op', 'value', 'ignore_case']) delete cond[k];
          Object.assign(cond, { attribute: name }, freshTest(next));
          ctx.rerender();
        },
      }),
      testControls(cond, column, {
        changed: ctx.changed, redraw: ctx.rerender,
        suggest: { table: 'customers', column: cond.attribute, kind: column?.type },
      }));
  },
  describe(cond, ctx) {
    const column = ctx.schema.customers.find((c) => c.name === cond.attribute);
    return testText(cond.attribute, cond, column?.type);
  },
});
