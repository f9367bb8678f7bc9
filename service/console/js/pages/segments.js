// The segments list: every stored segment with its cadence, size, last refresh and a
// sparkline of its size history; a search by name or id; and the ready-made segments
// ("Hazır Segmentler") to start a new one from.

import { api } from '../api.js';
import { sparkline } from '../chart.js';
import { errorNotice, fold, h, num, segmentHref, time } from '../dom.js';

const CADENCE = { manual: 'manual', hourly: 'hourly', nightly: 'nightly (03:00)' };

/** Runs `work` over `items`, `width` at a time. */
async function pool(items, width, work) {
  const queue = [...items];
  await Promise.all(Array.from({ length: width }, async () => {
    while (queue.length) await work(queue.shift());
  }));
}

export async function render(view) {
  const [list, templates] = await Promise.all([api.segments(), api.templates().catch(() => ({ templates: [] }))]);
  const segments = list.segments;
  const search = h('input', {
    type: 'search', id: 'segment-search', class: 'search', placeholder: 'Name or id, e.g. sepet',
  });
  const count = h('span', { class: 'muted small', 'aria-live': 'polite' });
  const rows = segments.map((s) => {
    const spark = h('div', { class: 'spark', 'aria-hidden': 'true' });
    const row = h('tr', { 'data-id': s.id, 'data-size': s.size ?? '', 'data-name': s.name },
      h('td', {}, h('a', { href: segmentHref(s.id) }, s.name), h('div', { class: 'muted small mono' }, s.id)),
      h('td', {}, CADENCE[s.refresh] ?? h('code', {}, s.refresh)),
      h('td', { class: 'num size' }, num(s.size)),
      h('td', {}, s.last_as_of ? time(s.last_as_of) : h('span', { class: 'muted' }, 'never')),
      h('td', {}, spark));
    row.spark = spark;
    return row;
  });
  const empty = h('tr', { hidden: true }, h('td', { colspan: 5, class: 'muted' }, 'No segment matches.'));
  const table = h('table', { id: 'segments-table' },
    h('caption', { class: 'sr-only' }, 'Segments'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Segment'), h('th', { scope: 'col' }, 'Refresh'),
      h('th', { scope: 'col', class: 'num' }, 'Size'), h('th', { scope: 'col' }, 'Last refresh'),
      h('th', { scope: 'col' }, 'Size over time'))),
    h('tbody', {}, rows, empty));
  const filter = () => {
    const q = fold(search.value.trim());
    let shown = 0;
    segments.forEach((s, i) => {
      const hit = !q || fold(s.name).includes(q) || fold(s.id).includes(q);
      rows[i].hidden = !hit;
      shown += hit ? 1 : 0;
    });
    empty.hidden = shown > 0;
    count.textContent = q ? `${shown} of ${segments.length} segments` : `${segments.length} segments`;
  };
  search.addEventListener('input', filter);
  filter();

  const stored = new Set(segments.map((s) => s.id));
  const templateCards = templates.templates.map((t) => h('div', { class: 'template', 'data-template': t.id },
    h('div', { class: 'name' }, t.name ?? t.id),
    h('div', { class: 'desc' }, t.description ?? ''),
    h('div', { class: 'actions' },
      h('a', { class: 'button', href: `#/new?template=${encodeURIComponent(t.id)}` }, 'Start from this'),
      stored.has(t.id) ? h('a', { href: segmentHref(t.id), class: 'small' }, 'in your segments') : null)));

  view.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'grow' }, h('h1', {}, 'Segments'), count),
      h('div', { class: 'actions' },
        h('label', { for: 'segment-search', class: 'sr-only' }, 'Search segments'),
        search,
        h('a', { class: 'button primary', href: '#/new' }, 'New segment'))),
    h('div', { class: 'card' }, segments.length
      ? h('div', { class: 'table-wrap' }, table)
      : h('p', { class: 'muted' }, 'No segments yet. Start from a ready-made one below, or build a new one.')),
    h('section', { class: 'card', 'aria-labelledby': 'templates-title' },
      h('h2', { id: 'templates-title' }, 'Hazır Segmentler — ready-made segments'),
      h('p', { class: 'muted small' }, 'The segments kitle ships with. Start from one, change what your shop needs, and save it under its own id.'),
      h('div', { class: 'templates' }, templateCards)));

  // Sparklines from each segment's history, a few requests at a time.
  pool(rows, 4, async (row) => {
    try {
      const history = await api.history(row.dataset.id);
      sparkline(row.spark, [...history.refreshes].reverse());
      row.dataset.refreshes = String(history.refreshes.length);
    } catch (e) {
      row.spark.append(errorNotice(e));
    }
  });
}
