// Suggested values for text fields: the most frequent values of a column, asked of the store
// through the public SQL route (`POST /v1/sql`) when the field is first focused, and offered
// in a <datalist>. Columns of ids and personal data are never suggested.

import { api } from '../api.js';
import { h } from '../dom.js';

const SKIP = new Set(['customer_id', 'email', 'phone', 'first_name', 'last_name', 'event_id', 'anonymous_id', 'session_id', 'order_id']);
const cache = new Map();

function quote(name) {
  return `"${String(name).replaceAll('"', '""')}"`;
}

/** The query for the 40 most frequent values of a column. */
export function suggestionQuery(table, column, kind) {
  const c = quote(column);
  if (kind === 'text_list') {
    return `SELECT v, count(*) AS n FROM (SELECT unnest(${c}) AS v FROM ${table}) WHERE v IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT 40`;
  }
  return `SELECT ${c} AS v, count(*) AS n FROM ${table} WHERE ${c} IS NOT NULL GROUP BY ${c} ORDER BY n DESC, v LIMIT 40`;
}

/** The values to suggest for `column` of `table` (`customers` or `events`). */
export function suggestions({ table, column, kind }) {
  if (!column || SKIP.has(column)) return Promise.resolve([]);
  const key = `${table}.${column}`;
  if (!cache.has(key)) {
    cache.set(key, api.sql(suggestionQuery(table, column, kind))
      .then((answer) => answer.rows.map((row) => String(row[0])))
      .catch(() => []));
  }
  return cache.get(key);
}

/** Gives `input` the datalist of the column's frequent values (one per column, in the
 *  page's body), loaded when a field of that column is first focused. */
export function attachSuggestions(input, suggest) {
  if (!suggest?.column || SKIP.has(suggest.column)) return;
  const id = `dl-${suggest.table}-${suggest.column}`.replace(/[^A-Za-z0-9_-]/g, '_');
  let list = document.getElementById(id);
  if (!list) {
    list = h('datalist', { id });
    document.body.append(list);
  }
  input.setAttribute('list', id);
  input.addEventListener('focus', async () => {
    if (list.dataset.loaded) return;
    list.dataset.loaded = 'yes';
    const values = await suggestions(suggest);
    list.replaceChildren(...values.map((v) => h('option', { value: v })));
  });
}
