// The builder (new or edit): name, id, description and cadence; the conditions as rows of
// the ikas model (see builder/rows/); the definition as sentences and as JSON (editable);
// and a live preview as the definition changes — size, a sample, who would enter and exit
// against the saved version, and the size it would have had weekly over the last 12 weeks.
// Validation problems of the API are shown at the row their JSON path points at.

import { ApiError, api, isAdmin, schema } from '../api.js';
import { sizesChart } from '../chart.js';
import { sentences } from '../describe.js';
import { customerHref, errorNotice, field, fold, h, num, segmentHref, select, time } from '../dom.js';
import { renderRow, showProblems } from '../builder/registry.js';
import { addBar } from '../builder/rows/group.js';
import '../builder/rows/index.js';

const REFRESH = [['manual', 'Manual (when asked)'], ['hourly', 'Hourly'], ['nightly', 'Nightly (03:00)'], ['cron', 'Custom (cron expression)']];
const WEEKS = 12;

/** `İğdır kampanyası` → `igdir-kampanyasi`: an id from a name. */
export function slug(name) {
  return fold(name).replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
}

/** The document the builder edits, in the language's canonical form (what the API stores):
 *  no empty description, no default `refresh`. */
function documentOf(doc) {
  const out = { id: doc.id, name: doc.name };
  if (doc.description) out.description = doc.description;
  out.refresh = doc.refresh;
  out.condition = doc.condition;
  return out;
}

/** 12 weekly instants ending now (to the second), oldest first. */
function weeklyInstants(now = Date.now()) {
  const end = Math.floor(now / 1000) * 1000;
  return Array.from({ length: WEEKS }, (_, i) => new Date(end - (WEEKS - 1 - i) * 7 * 86_400_000).toISOString().replace('.000Z', 'Z'));
}

export async function render(view, { id, template }) {
  const [store, list, templates] = await Promise.all([schema(), api.segments(), template ? api.templates() : null]);
  const editing = Boolean(id);
  let doc;
  if (editing) {
    const stored = await api.segment(id);
    doc = { id, name: stored.name, description: stored.description ?? '', refresh: stored.refresh, condition: stored.condition };
  } else if (template) {
    const t = templates.templates.find((x) => x.id === template);
    if (!t) throw new ApiError(404, { message: `There is no ready-made segment ${template}.` });
    const taken = new Set(list.segments.map((s) => s.id));
    let newId = t.id;
    for (let n = 2; taken.has(newId); n += 1) newId = `${t.id}-${n}`;
    doc = { id: newId, name: t.name ?? t.id, description: t.description ?? '', refresh: t.refresh ?? 'manual', condition: structuredClone(t.condition) };
  } else {
    doc = { id: '', name: '', description: '', refresh: 'manual', condition: { all: [] } };
  }
  let idTouched = editing || Boolean(template);
  const existing = new Set(list.segments.map((s) => s.id));
  const ctx = { schema: store, segments: list.segments, selfId: doc.id, changed: () => changed() };

  // Head fields, each a place for the problems of its JSON path.
  const placed = (path, child, wide = false) => h('div', { 'data-path': path, class: wide ? 'placed wide' : 'placed' }, child, h('ul', { class: 'problems' }));
  const name = h('input', { type: 'text', id: 'segment-name', value: doc.name, autocomplete: 'off', placeholder: 'e.g. Favorilere ekleyip sipariş vermeyenler' });
  const idInput = h('input', { type: 'text', id: 'segment-id', value: doc.id, autocomplete: 'off', disabled: editing, pattern: '[a-z0-9][a-z0-9_-]{0,63}', spellcheck: 'false' });
  const description = h('input', { type: 'text', id: 'segment-description', value: doc.description, autocomplete: 'off' });
  const cadence = REFRESH.some(([v]) => v === doc.refresh) ? doc.refresh : 'cron';
  const refresh = select(REFRESH, cadence, { id: 'segment-refresh' });
  const cron = h('input', { type: 'text', id: 'segment-cron', value: cadence === 'cron' ? doc.refresh : '0 6 * * 1', hidden: cadence !== 'cron', 'aria-label': 'Cron expression (minute hour day month weekday)', class: 'mono', size: 14 });
  const elsewhere = h('ul', { class: 'problems', id: 'other-problems' });

  name.addEventListener('input', () => {
    doc.name = name.value;
    if (!idTouched) { doc.id = slug(name.value); idInput.value = doc.id; ctx.selfId = doc.id; }
    changed();
  });
  idInput.addEventListener('input', () => { idTouched = true; doc.id = idInput.value.trim(); ctx.selfId = doc.id; changed(); });
  description.addEventListener('input', () => { doc.description = description.value; changed(); });
  const setRefresh = () => { cron.hidden = refresh.value !== 'cron'; doc.refresh = refresh.value === 'cron' ? cron.value.trim() : refresh.value; changed(); };
  refresh.addEventListener('change', setRefresh);
  cron.addEventListener('input', setRefresh);

  // The conditions: a group at the root, or a single condition with a bar that makes it one.
  const conditions = h('div', { id: 'conditions', class: 'conditions', 'data-path': '' });
  const drawRoot = () => {
    const rootCtx = { ...ctx, path: 'condition', replace: (next) => { doc.condition = next; drawRoot(); changed(); } };
    const row = renderRow(doc.condition, rootCtx);
    const parts = [row];
    const c = doc.condition;
    const isGroup = c && typeof c === 'object' && Object.keys(c).length === 1 && Array.isArray(c.all ?? c.any);
    if (!isGroup) {
      parts.push(addBar((kind) => { doc.condition = { all: [doc.condition, kind.create(ctx)] }; drawRoot(); changed(); }, '+ and '));
    }
    conditions.replaceChildren(...parts, elsewhere);
  };

  // Sentences and JSON, kept in step with the rows.
  const said = h('div', { id: 'builder-sentences' });
  const jsonText = h('textarea', { id: 'builder-json', class: 'mono', rows: 14, spellcheck: 'false', 'aria-label': 'The definition as JSON' });
  const jsonError = h('p', { class: 'error small', role: 'alert' });
  const applyJson = h('button', { type: 'button', id: 'apply-json' }, 'Apply JSON');
  applyJson.addEventListener('click', () => {
    try {
      const parsed = JSON.parse(jsonText.value);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('a definition is a JSON object');
      doc = { id: editing ? doc.id : parsed.id ?? doc.id, name: parsed.name ?? '', description: parsed.description ?? '', refresh: parsed.refresh ?? 'manual', condition: parsed.condition };
      name.value = doc.name; idInput.value = doc.id; description.value = doc.description;
      jsonError.textContent = '';
      drawRoot();
      changed();
    } catch (e) {
      jsonError.textContent = `Not applied: ${e.message}`;
    }
  });

  // The preview panel.
  const state = h('p', { class: 'state', id: 'preview-state', role: 'status' });
  const size = h('div', { class: 'size', id: 'preview-size' }, '—');
  const diff = h('p', { id: 'preview-diff', class: 'small' });
  const sample = h('div', { class: 'sample', id: 'preview-sample' });
  const weekly = h('div', { id: 'preview-weekly' });
  const weeklyState = h('p', { class: 'muted small', id: 'weekly-state' });
  const save = h('button', { type: 'button', class: 'primary', id: 'save-segment' }, editing ? 'Save changes' : 'Save segment');
  const saveState = h('div', { id: 'save-state', 'aria-live': 'polite' });

  view.append(
    h('div', { class: 'page-head' },
      h('div', { class: 'grow' },
        h('p', { class: 'small' }, h('a', { href: editing ? segmentHref(id) : '#/segments' }, editing ? `← ${doc.name}` : '← Segments')),
        h('h1', {}, editing ? `Edit ${doc.name}` : template ? 'New segment from a ready-made one' : 'New segment')),
      h('div', { class: 'actions' },
        isAdmin() ? save : h('span', { class: 'muted small', id: 'read-only-note' }, 'Your token can preview but not save (read access).'))),
    saveState,
    h('div', { class: 'grid2' },
      h('div', {},
        h('section', { class: 'card', 'aria-labelledby': 'about-title' },
          h('h2', { id: 'about-title' }, 'About'),
          h('div', { class: 'fields' },
            placed('name', field('Name', name, { wide: true }), true),
            placed('id', field('Id', idInput, { hint: 'a–z, 0–9, - and _; fixed once saved' }))),
          h('div', { class: 'fields' },
            placed('description', field('Description', description, { wide: true }), true),
            placed('refresh', h('div', { class: 'inline' }, field('Refresh', refresh), cron)))),
        h('section', { class: 'card', 'aria-labelledby': 'conditions-title' },
          h('h2', { id: 'conditions-title' }, 'Conditions'),
          conditions),
        h('section', { class: 'card', 'aria-labelledby': 'reads-title' },
          h('h2', { id: 'reads-title' }, 'In words'),
          said,
          h('details', {}, h('summary', {}, 'Definition as JSON'), jsonText, h('div', { class: 'actions' }, applyJson), jsonError))),
      h('aside', { class: 'card preview', 'aria-labelledby': 'preview-title' },
        h('h2', { id: 'preview-title' }, 'Live preview'),
        state, size, h('div', { class: 'muted small' }, 'customers match now'),
        diff,
        h('h3', {}, 'Sample'), sample,
        h('h3', {}, `Size over the last ${WEEKS} weeks`), weeklyState, weekly)));

  // Live preview: debounced, the stale answer dropped when a newer edit was made.
  let timer = null;
  let generation = 0;
  let inFlight = null;
  function changed() {
    const current = documentOf(doc);
    said.replaceChildren(sentences(current.condition, ctx));
    if (document.activeElement !== jsonText) jsonText.value = JSON.stringify(current, null, 2);
    clearTimeout(timer);
    state.textContent = 'Changes pending…';
    view.dataset.preview = 'pending';
    view.dataset.weekly = 'pending';
    timer = setTimeout(() => preview(current), 450);
  }

  async function preview(current) {
    generation += 1;
    const mine = generation;
    inFlight?.abort();
    inFlight = new AbortController();
    const signal = inFlight.signal;
    const local = localProblems(current);
    const c = current.condition;
    if (c && typeof c === 'object' && Array.isArray(c.all ?? c.any) && !(c.all ?? c.any).length) {
      state.textContent = 'Add a condition to see who matches.';
      size.textContent = '—';
      view.dataset.preview = 'empty';
      return;
    }
    state.textContent = 'Previewing…';
    try {
      const answer = await api.preview({ ...current, id: current.id || 'preview' }, { sample: 12, signal });
      if (mine !== generation) return;
      showProblems(view, local, elsewhere);
      size.textContent = num(answer.size);
      size.dataset.size = answer.size;
      size.dataset.asOf = answer.as_of;
      state.replaceChildren('As of ', time(answer.as_of));
      diff.replaceChildren(answer.entered === null
        ? h('span', { class: 'muted' }, editing ? 'Not refreshed yet: nothing to compare with.' : 'A new segment: nothing to compare with.')
        : h('span', {}, h('span', { class: 'badge good', id: 'preview-entered', 'data-count': answer.entered }, `${num(answer.entered)} would enter`), ' ',
          h('span', { class: 'badge bad', id: 'preview-exited', 'data-count': answer.exited }, `${num(answer.exited)} would exit`),
          ' against the members of the last refresh'));
      sample.replaceChildren(...answer.sample.map((c) => h('a', { href: customerHref(c) }, c)));
      if (!answer.sample.length) sample.append(h('span', { class: 'muted small' }, 'nobody'));
      view.dataset.preview = 'done';
      weeklyPreview(current, mine, signal);
    } catch (e) {
      if (e.name === 'AbortError' || mine !== generation) return;
      size.textContent = '—';
      delete size.dataset.size;
      if (e.code === 'invalid_definition' || e.code === 'id_mismatch') {
        showProblems(view, [...local, ...e.details], elsewhere);
        state.textContent = `${e.details.length} problem${e.details.length === 1 ? '' : 's'} to fix (shown at the rows).`;
        view.dataset.preview = 'problems';
      } else {
        showProblems(view, local, elsewhere);
        state.replaceChildren(errorNotice(e));
        view.dataset.preview = 'error';
      }
    }
  }

  async function weeklyPreview(current, mine, signal) {
    weeklyState.textContent = 'Computing…';
    try {
      const answer = await api.preview({ ...current, id: current.id || 'preview' }, { asOf: weeklyInstants(), signal });
      if (mine !== generation) return;
      weeklyState.textContent = '';
      sizesChart(weekly, answer.sizes);
      view.dataset.weekly = 'done';
    } catch (e) {
      if (e.name === 'AbortError' || mine !== generation) return;
      weeklyState.replaceChildren(errorNotice(e));
      view.dataset.weekly = 'error';
    }
  }

  /** What the console checks before the API: a new segment must not take a stored id. */
  function localProblems(current) {
    if (!editing && current.id && existing.has(current.id)) {
      return [{ path: 'id', message: `A segment with the id ${current.id} exists already: choose another id, or edit that segment.` }];
    }
    return [];
  }

  save.addEventListener('click', async () => {
    const current = documentOf(doc);
    const local = localProblems(current);
    if (local.length) {
      showProblems(view, local, elsewhere);
      return;
    }
    save.disabled = true;
    saveState.replaceChildren(h('p', { class: 'notice' }, 'Saving…'));
    try {
      await api.put(current.id, current);
      sessionStorage.setItem('kitle.notice', `Saved the segment ${current.id}. Refresh it to compute its members.`);
      window.location.hash = segmentHref(current.id);
    } catch (e) {
      save.disabled = false;
      if (e.code === 'invalid_definition' || e.code === 'id_mismatch') {
        showProblems(view, e.details, elsewhere);
        saveState.replaceChildren(h('p', { class: 'notice bad', role: 'alert' }, 'Not saved: fix the problems shown at the rows.'));
      } else {
        saveState.replaceChildren(errorNotice(e));
      }
    }
  });

  drawRoot();
  changed();
}
