// A SQL condition: `{"sql": "SELECT customer_id FROM …"}`, true for the customer ids the
// read-only query returns (over `events`, `customers` and `identities` as of the instant).

import { h } from '../../dom.js';
import { register } from '../registry.js';

register({
  kind: 'sql',
  label: 'SQL',
  title: () => 'SQL query',
  matches: (c) => c && typeof c === 'object' && typeof c.sql === 'string',
  create: () => ({ sql: 'SELECT customer_id FROM customers WHERE city = \'İstanbul\'' }),
  render(cond, ctx) {
    return h('div', {},
      h('textarea', {
        'aria-label': 'SQL query returning customer_id', 'data-key': 'sql', rows: 3, spellcheck: 'false', class: 'mono',
        oninput: (e) => { cond.sql = e.target.value; ctx.changed(); },
      }, cond.sql),
      h('span', { class: 'muted small' }, 'A read-only query over events, customers and identities returning a customer_id column.'));
  },
  describe(cond) {
    return `Is returned by the SQL query “${cond.sql}”`;
  },
});
