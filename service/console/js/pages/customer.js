// A customer: which segments they are in and since when, and for any segment the
// explanation of why they are or are not a member, condition by condition (a sequence's
// steps with the time each was reached); for admin tokens, erasing them (erase.js).

import { api, isAdmin } from '../api.js';
import { stepText } from '../builder/words.js';
import { customerHref, errorNotice, field, h, segmentHref, select, time } from '../dom.js';
import { eraseCard } from './erase.js';

/** How deep a condition sits, from its JSON path (`condition.all[1].not` is 2). */
function depth(path) {
  return (path.match(/\.(all|any)\[\d+\]|\.not/g) ?? []).length;
}

export async function render(view, { id, segment }) {
  const input = h('input', { type: 'search', id: 'customer-id', value: id ?? '', autocomplete: 'off', placeholder: 'e.g. c0000042', spellcheck: 'false' });
  const form = h('form', { class: 'fields', role: 'search' },
    field('Customer id', input, { wide: true }),
    h('button', { type: 'submit', class: 'primary' }, 'Look up'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const wanted = input.value.trim();
    if (wanted) window.location.hash = customerHref(wanted);
  });
  view.append(
    h('div', { class: 'page-head' }, h('div', { class: 'grow' }, h('h1', {}, id ? `Customer ${id}` : 'Customers'))),
    h('div', { class: 'card' }, form));
  if (!id) {
    input.focus();
    view.append(h('p', { class: 'muted' }, 'Type a customer id to see their segments and why they are (not) in one.'));
    return;
  }
  const [memberships, list] = await Promise.all([api.customerSegments(id), api.segments()]);
  const names = new Map(list.segments.map((s) => [s.id, s.name]));
  const theirs = memberships.segments;
  let card = segmentsCard(id, theirs, names);
  view.append(card);

  const chosen = segment ?? theirs[0]?.id ?? list.segments[0]?.id;
  const which = select(list.segments.map((s) => [s.id, `${s.name} · ${s.id}`]), chosen, { id: 'explain-segment' });
  const explainButton = h('button', { type: 'button', class: 'primary', id: 'explain' }, 'Explain');
  const answer = h('div', { id: 'explanation', 'aria-live': 'polite' });
  view.append(h('section', { class: 'card', 'aria-labelledby': 'why-title' },
    h('h2', { id: 'why-title' }, 'Why (not) in a segment?'),
    h('div', { class: 'fields' }, field('Segment', which), explainButton),
    answer));
  // Only the answer for the latest choice is shown: an earlier one that arrives later is
  // dropped (choosing another segment while one is evaluated must not show the old one).
  let asked = 0;
  const explain = async () => {
    asked += 1;
    const mine = asked;
    const wanted = which.value;
    delete answer.dataset.segment;
    answer.replaceChildren(h('p', { class: 'muted' }, 'Evaluating the definition for this customer…'));
    try {
      const lookup = await api.lookup(wanted, id, true);
      if (mine !== asked) return;
      answer.replaceChildren(explanation(lookup, wanted, names));
      answer.dataset.segment = wanted;
    } catch (e) {
      if (mine !== asked) return;
      answer.replaceChildren(errorNotice(e));
    }
  };
  explainButton.addEventListener('click', explain);
  which.addEventListener('change', () => {
    const url = `${customerHref(id)}?segment=${encodeURIComponent(which.value)}`;
    history.replaceState(null, '', url);
    explain();
  });
  if (chosen) explain();

  if (isAdmin()) {
    view.append(eraseCard(id, names, async () => {
      const fresh = segmentsCard(id, (await api.customerSegments(id)).segments, names);
      card.replaceWith(fresh);
      card = fresh;
      if (which.value) explain();
    }));
  }
}

/** The card of the segments the customer is in (`GET /v1/customers/{id}/segments`). */
function segmentsCard(id, theirs, names) {
  return h('section', { class: 'card', 'aria-labelledby': 'in-title', id: 'customer-in' },
    h('h2', { id: 'in-title' }, theirs.length ? `In ${theirs.length} segment${theirs.length === 1 ? '' : 's'}` : 'In no segment'),
    theirs.length
      ? h('table', { id: 'customer-segments' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Segment'), h('th', { scope: 'col' }, 'Member since'), h('th', { scope: 'col' }, ''))),
        h('tbody', {}, theirs.map((m) => h('tr', { 'data-segment': m.id },
          h('td', {}, h('a', { href: segmentHref(m.id) }, names.get(m.id) ?? m.id), h('div', { class: 'muted small mono' }, m.id)),
          h('td', {}, time(m.since)),
          h('td', {}, h('a', { href: `${customerHref(id)}?segment=${encodeURIComponent(m.id)}` }, 'Why?'))))))
      : h('p', { class: 'muted', id: 'customer-none' }, 'This customer is in none of the segments (an unknown id is in none, too).'));
}

function explanation(lookup, segment, names) {
  const verdict = lookup.member
    ? h('span', { class: 'badge good', id: 'explain-verdict', 'data-member': 'true' }, 'member')
    : h('span', { class: 'badge bad', id: 'explain-verdict', 'data-member': 'false' }, 'not a member');
  return h('div', {},
    h('p', {}, verdict, ' of ', h('a', { href: segmentHref(segment) }, names.get(segment) ?? segment),
      lookup.since ? h('span', {}, ' since ', time(lookup.since)) : null,
      h('span', { class: 'muted small' }, ' · conditions evaluated as of ', time(lookup.explained_as_of))),
    lookup.in_universe === false
      ? h('p', { class: 'notice bad' }, 'This customer has no profile as of that instant, so no condition can hold for them.')
      : null,
    h('ul', { class: 'explain', id: 'explain-conditions' },
      (lookup.conditions ?? []).map((c) => h('li', {
        'data-path': c.path, 'data-held': String(c.held), style: `padding-left: ${depth(c.path) * 22}px`,
      },
      h('span', { class: `mark ${c.held ? 'yes' : 'no'}`, 'aria-label': c.held ? 'holds' : 'does not hold' }, c.held ? '✓' : '✗'),
      h('span', { class: 'explanation' }, c.explanation),
      h('span', { class: 'muted small mono' }, `  ${c.path}`),
      Array.isArray(c.condition?.sequence) ? reachedSteps(c) : null))));
}

/** A sequence's steps as explained: each with the instant it was first reached (the API's
 *  `rank_or_follow_ups`, null where it was not) and, when the chain was completed, when. */
function reachedSteps(c) {
  const at = Array.isArray(c.rank_or_follow_ups) ? c.rank_or_follow_ups : [];
  return h('div', { class: 'sequence-explained' },
    h('ol', { class: 'reached' }, c.condition.sequence.map((step, i) => {
      const when = at[i] ?? null;
      return h('li', { 'data-step': i, 'data-reached': String(when !== null), 'data-at': when ?? '' },
        h('span', { class: `mark ${when !== null ? 'yes' : 'no'}`, 'aria-label': when !== null ? 'reached' : 'not reached' }, when !== null ? '✓' : '✗'),
        `Step ${i + 1}: ${stepText(step)} — `,
        when !== null ? h('span', {}, 'first reached ', time(when)) : h('span', { class: 'muted' }, 'not reached'));
    })),
    h('p', { class: 'small', 'data-completed': c.value ?? '' },
      c.value ? h('span', {}, 'The whole sequence was completed ', time(c.value)) : h('span', { class: 'muted' }, 'The sequence was not completed.')));
}
