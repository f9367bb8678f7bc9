// NOT: `{"not": condition}`, true when the inner condition is false. Made with any row's NOT
// button; the inner condition is edited in place.

import { h } from '../../dom.js';
import { register, renderRow } from '../registry.js';

register({
  kind: 'not',
  label: 'Not',
  title: () => 'Not: true when this is false',
  matches: (c) => c && typeof c === 'object' && Object.keys(c).length === 1 && 'not' in c && c.not && typeof c.not === 'object',
  render(cond, ctx) {
    return h('div', { class: 'children' }, renderRow(cond.not, {
      ...ctx,
      path: `${ctx.path}.not`,
      nested: true,
      replace: (next) => { cond.not = next; ctx.rerender(); },
      remove: undefined,
      move: undefined,
    }));
  },
  describe(cond) {
    return { text: 'None of this holds:', children: [cond.not] };
  },
});
