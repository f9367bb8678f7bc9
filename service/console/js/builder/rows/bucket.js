// An A/B bucket: `{"bucket": {"salt", "from", "to"}}`, a stable split of customers into 100
// buckets by SHA-256 of `salt:customer_id`; true for buckets from <= b < to.

import { h } from '../../dom.js';
import { readNumber } from '../fields.js';
import { register } from '../registry.js';

register({
  kind: 'bucket',
  label: 'A/B bucket',
  title: () => 'A/B bucket',
  matches: (c) => c && typeof c === 'object' && c.bucket && typeof c.bucket === 'object',
  create: (ctx) => ({ bucket: { salt: ctx.selfId || 'ab-test', from: 0, to: 50 } }),
  render(cond, ctx) {
    const b = cond.bucket;
    const number = (key, label) => h('input', {
      type: 'text', inputmode: 'numeric', size: 4, value: b[key] ?? '', 'aria-label': label, 'data-key': key,
      oninput: (e) => { b[key] = readNumber(e.target.value); ctx.changed(); },
    });
    return h('div', { class: 'line' },
      h('span', { class: 'lead' }, 'Salt'),
      h('input', {
        type: 'text', value: b.salt ?? '', 'aria-label': 'Salt', 'data-key': 'salt',
        oninput: (e) => { b.salt = e.target.value; ctx.changed(); },
      }),
      h('span', {}, 'buckets from'), number('from', 'First bucket (0–100)'),
      h('span', {}, 'up to (not including)'), number('to', 'Bucket after the last (0–100)'),
      h('span', { class: 'muted small' }, 'of 100: a stable share of customers'));
  },
  describe(cond) {
    const b = cond.bucket;
    return `Falls in A/B buckets ${b.from} to ${Number(b.to) - 1} of 100 with salt “${b.salt}” (${Number(b.to) - Number(b.from)} %)`;
  },
});
