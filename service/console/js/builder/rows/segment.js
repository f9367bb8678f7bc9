// A segment reference: `{"segment": "other-id"}`, true for the members of another segment
// evaluated at the same instant.

import { h, select } from '../../dom.js';
import { register } from '../registry.js';

register({
  kind: 'segment',
  label: 'Segment',
  title: () => 'Member of a segment',
  matches: (c) => c && typeof c === 'object' && typeof c.segment === 'string',
  create: (ctx) => ({ segment: (ctx.segments.find((s) => s.id !== ctx.selfId) ?? { id: '' }).id }),
  render(cond, ctx) {
    const options = ctx.segments.filter((s) => s.id !== ctx.selfId).map((s) => [s.id, `${s.name} · ${s.id}`]);
    if (cond.segment && !options.some(([v]) => v === cond.segment)) options.unshift([cond.segment, `${cond.segment} (not stored)`]);
    return h('div', { class: 'line' },
      h('span', { class: 'lead' }, 'Member of'),
      select(options, cond.segment, {
        'aria-label': 'Segment', 'data-key': 'segment',
        onchange: (e) => { cond.segment = e.target.value; ctx.changed(); },
      }));
  },
  describe(cond, ctx) {
    const other = ctx.segments.find((s) => s.id === cond.segment);
    return `Is a member of segment “${other ? other.name : cond.segment}” (${cond.segment})`;
  },
});
