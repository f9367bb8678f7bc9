// The fallback row: a condition no other row kind edits (a kind this console does not know
// yet), kept exactly as written and editable as JSON, so that editing a definition never
// loses part of it.

import { h } from '../../dom.js';
import { register } from '../registry.js';

register({
  kind: 'json',
  label: 'JSON condition',
  fallback: true,
  matches: () => true,
  render(cond, ctx) {
    const error = h('p', { class: 'error small', role: 'alert' });
    return h('div', {},
      h('textarea', {
        'aria-label': 'Condition as JSON', 'data-key': 'json', rows: 4, spellcheck: 'false', class: 'mono',
        oninput: (e) => {
          try {
            const parsed = JSON.parse(e.target.value);
            error.textContent = '';
            for (const k of Object.keys(cond)) delete cond[k];
            Object.assign(cond, parsed);
            ctx.changed();
          } catch (err) {
            error.textContent = `Not valid JSON: ${err.message}`;
          }
        },
      }, JSON.stringify(cond, null, 2)),
      error);
  },
  describe(cond) {
    return `Condition ${JSON.stringify(cond)}`;
  },
});
