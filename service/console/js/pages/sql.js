// Analyst SQL over `POST /v1/sql`: a query box (Ctrl+Enter runs it), the results as a table,
// and the same result as CSV.

import { api } from '../api.js';
import { download, errorNotice, h, num } from '../dom.js';

const EXAMPLES = [
  ['Events by type', 'SELECT event_type, count(*) AS events\nFROM events\nGROUP BY event_type\nORDER BY events DESC'],
  ['Segment sizes', 'SELECT segment_id, count(*) AS members\nFROM memberships\nGROUP BY segment_id\nORDER BY members DESC'],
  ['Customers by city', 'SELECT city, count(*) AS customers\nFROM customers\nGROUP BY city\nORDER BY customers DESC\nLIMIT 20'],
  ['Entries and exits per day', "SELECT segment_id, date_trunc('day', at) AS day, change, count(*) AS customers\nFROM segment_changes\nGROUP BY 1, 2, 3\nORDER BY 2 DESC, 1\nLIMIT 50"],
];

const LAST = 'kitle.sql';

function cell(value) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, 'null');
  if (typeof value === 'object') return JSON.stringify(value);
  return typeof value === 'number' ? num(value) : String(value);
}

export async function render(view) {
  const box = h('textarea', { id: 'sql-query', class: 'mono', rows: 8, spellcheck: 'false' });
  box.value = sessionStorage.getItem(LAST) ?? EXAMPLES[0][1];
  const run = h('button', { type: 'button', class: 'primary', id: 'sql-run' }, 'Run');
  const csv = h('button', { type: 'button', id: 'sql-csv' }, 'Download CSV');
  const out = h('div', { id: 'sql-result', 'aria-live': 'polite' });
  const go = async () => {
    sessionStorage.setItem(LAST, box.value);
    run.disabled = true;
    out.replaceChildren(h('p', { class: 'muted' }, 'Running…'));
    const started = performance.now();
    try {
      const answer = await api.sql(box.value);
      const ms = Math.round(performance.now() - started);
      out.replaceChildren(
        h('p', { class: 'muted small', id: 'sql-count', 'data-rows': answer.rows.length }, `${num(answer.rows.length)} row${answer.rows.length === 1 ? '' : 's'} in ${num(ms)} ms`),
        h('div', { class: 'table-wrap' }, h('table', { id: 'sql-table' },
          h('thead', {}, h('tr', {}, answer.columns.map((c, i) => h('th', { scope: 'col', class: typeof answer.rows[0]?.[i] === 'number' ? 'num' : undefined }, c)))),
          h('tbody', {}, answer.rows.map((row) => h('tr', {}, row.map((v) => h('td', { class: typeof v === 'number' ? 'num' : undefined, 'data-value': JSON.stringify(v) }, cell(v)))))))));
    } catch (e) {
      out.replaceChildren(errorNotice(e));
    } finally {
      run.disabled = false;
    }
  };
  run.addEventListener('click', go);
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      go();
    }
  });
  csv.addEventListener('click', async () => {
    try {
      download('query.csv', await api.sql(box.value, 'text/csv'));
    } catch (e) {
      out.replaceChildren(errorNotice(e));
    }
  });
  view.append(
    h('div', { class: 'page-head' }, h('div', { class: 'grow' }, h('h1', {}, 'SQL'),
      h('p', { class: 'muted small' }, 'Read-only queries over events, customers, memberships, segment_changes and segments.'))),
    h('div', { class: 'card' },
      h('label', { for: 'sql-query' }, 'Query'), box,
      h('div', { class: 'actions', style: 'margin-top: 8px' }, run, csv,
        h('span', { class: 'muted small' }, 'Ctrl+Enter runs it. Examples:'),
        EXAMPLES.map(([label, sql]) => h('button', { type: 'button', class: 'link', onclick: () => { box.value = sql; box.focus(); } }, label)))),
    h('div', { class: 'card' }, out));
}
