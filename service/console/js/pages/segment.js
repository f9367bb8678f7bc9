// One segment: its definition as sentences and JSON, the chart of size, entered and exited
// per refresh, the members a page at a time (cursor), CSV export, and — for admin tokens —
// edit, "refresh now" and delete (refused, with the reason, while others refer to it).

import { api, isAdmin, schema } from '../api.js';
import { historyChart } from '../chart.js';
import { sentences } from '../describe.js';
import { customerHref, download, errorNotice, h, num, segmentHref, time, when } from '../dom.js';

const PAGE = 25;

export async function render(view, { id }) {
  const [definition, history, store, list] = await Promise.all([
    api.segment(id), api.history(id), schema(), api.segments(),
  ]);
  const ctx = { schema: store, segments: list.segments, selfId: id };
  const notices = h('div', { 'aria-live': 'polite', id: 'segment-notices' });
  const json = { ...definition };
  delete json.size;
  delete json.last_as_of;

  const refreshButton = h('button', { type: 'button', id: 'refresh-now', class: 'primary' }, 'Refresh now');
  const deleteButton = h('button', { type: 'button', id: 'delete-segment', class: 'danger' }, 'Delete');
  const exportButton = h('button', { type: 'button', id: 'export-csv' }, 'Export CSV');
  const actions = h('div', { class: 'actions' },
    isAdmin() ? h('a', { class: 'button', id: 'edit-segment', href: `${segmentHref(id)}/edit` }, 'Edit') : null,
    isAdmin() ? refreshButton : null,
    exportButton,
    isAdmin() ? deleteButton : null);

  const chart = h('div', { id: 'history-chart' });
  const members = h('div', { id: 'members' });
  view.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'grow' },
        h('p', { class: 'small' }, h('a', { href: '#/segments' }, '← Segments')),
        h('h1', {}, definition.name),
        h('div', { class: 'muted small' }, h('code', {}, id), ' · refresh ', h('code', {}, definition.refresh)),
        definition.description ? h('p', {}, definition.description) : null),
      actions),
    notices,
    h('div', { class: 'card' },
      h('div', { class: 'stats' },
        stat('Members', h('span', { id: 'segment-size', 'data-size': definition.size ?? '' }, num(definition.size))),
        stat('Last refresh', definition.last_as_of ? time(definition.last_as_of) : 'never'),
        stat('Refreshes', num(history.refreshes.length)))),
    h('div', { class: 'card' },
      h('h2', {}, 'Who is in it'),
      h('div', { id: 'definition-sentences' }, sentences(json.condition, ctx)),
      h('details', {}, h('summary', {}, 'Definition as JSON'), h('pre', { class: 'json', id: 'definition-json' }, JSON.stringify(json, null, 2)))),
    h('div', { class: 'card' }, h('h2', {}, 'Size over time'), chart),
    h('div', { class: 'card' }, h('h2', {}, 'Members'), members));
  historyChart(chart, history.refreshes);
  membersTable(members, id);

  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    try {
      download(`${id}-members.csv`, await api.membersCsv(id));
    } catch (e) {
      notices.replaceChildren(errorNotice(e));
    } finally {
      exportButton.disabled = false;
    }
  });
  refreshButton.addEventListener('click', async () => {
    refreshButton.disabled = true;
    refreshButton.textContent = 'Refreshing…';
    try {
      const outcome = await api.refresh(id);
      const mine = outcome.segments.find((s) => s.id === id);
      sessionStorage.setItem('kitle.notice', `Refreshed as of ${when(outcome.as_of)}: ${num(mine?.size)} members, ${num(mine?.entered)} entered, ${num(mine?.exited)} exited (${num(mine?.duration_ms)} ms).`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (e) {
      notices.replaceChildren(errorNotice(e));
      refreshButton.disabled = false;
      refreshButton.textContent = 'Refresh now';
    }
  });
  deleteButton.addEventListener('click', async () => {
    if (!window.confirm(`Delete the segment “${definition.name}” (${id}) and its memberships?`)) return;
    try {
      await api.remove(id);
      sessionStorage.setItem('kitle.notice', `Deleted the segment ${id}.`);
      window.location.hash = '#/segments';
    } catch (e) {
      const users = e.details.map((d) => d.referenced_by).filter(Boolean);
      notices.replaceChildren(h('div', { class: 'notice bad', role: 'alert', id: 'delete-refused' },
        h('strong', {}, 'Not deleted: '), e.message, '.',
        users.length ? h('span', {}, ' Change or delete these first: ', users.flatMap((u, i) => [i ? ', ' : '', h('a', { href: segmentHref(u) }, u)])) : null));
    }
  });
  const notice = sessionStorage.getItem('kitle.notice');
  if (notice) {
    sessionStorage.removeItem('kitle.notice');
    notices.replaceChildren(h('p', { class: 'notice good', role: 'status' }, notice));
  }
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

/** The members, `PAGE` at a time, following the API's cursors (a stack of them for "Previous"). */
function membersTable(el, id) {
  const cursors = [null];
  const show = async () => {
    const cursor = cursors[cursors.length - 1];
    let page;
    try {
      page = await api.members(id, { cursor, limit: PAGE });
    } catch (e) {
      el.replaceChildren(errorNotice(e));
      return;
    }
    const previous = h('button', { type: 'button', id: 'members-previous', disabled: cursors.length === 1 }, '← Previous');
    const next = h('button', { type: 'button', id: 'members-next', disabled: !page.next_cursor }, 'Next →');
    previous.addEventListener('click', () => { cursors.pop(); show(); });
    next.addEventListener('click', () => { cursors.push(page.next_cursor); show(); });
    const first = (cursors.length - 1) * PAGE;
    el.replaceChildren(
      page.members.length
        ? h('table', { id: 'members-table', 'data-page': cursors.length, 'data-limit': PAGE },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Customer'), h('th', { scope: 'col' }, 'Member since'))),
          h('tbody', {}, page.members.map((m) => h('tr', { 'data-customer': m.customer_id },
            h('td', {}, h('a', { href: `${customerHref(m.customer_id)}?segment=${encodeURIComponent(id)}` }, m.customer_id)),
            h('td', {}, time(m.since))))))
        : h('p', { class: 'muted' }, cursors.length === 1 ? 'No members (refresh it to compute them).' : 'No more members.'),
      h('div', { class: 'pager' }, previous, next,
        h('span', { class: 'muted small' }, page.members.length ? `${num(first + 1)}–${num(first + page.members.length)}` : '')));
  };
  show();
}
