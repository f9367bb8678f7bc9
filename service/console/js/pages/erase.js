// Erasing a customer (KVKK / GDPR) from their page, for admin tokens only: a button, a dialog
// that asks for the customer id typed again and an optional reason, then
// `POST /v1/customers/{id}/erase` and what it answered — the segments they left, or the
// service's error message. The page hides the card for read tokens (the route is admin-only).

import { api } from '../api.js';
import { h, num, segmentHref, time } from '../dom.js';

/** The erase card for customer `id`; `names` maps segment ids to names, `onErased(answer)`
 *  runs after a successful erasure (to show the customer's segments again). */
export function eraseCard(id, names, onErased) {
  const outcome = h('div', { id: 'erase-outcome', 'aria-live': 'polite' });
  const confirm = h('input', { type: 'text', id: 'erase-confirm', autocomplete: 'off', spellcheck: 'false', class: 'mono' });
  const reason = h('input', { type: 'text', id: 'erase-reason', autocomplete: 'off', placeholder: 'e.g. KVKK başvurusu 2025/118' });
  const error = h('p', { class: 'error', id: 'erase-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'danger', id: 'erase-submit', disabled: true }, 'Erase');
  const cancel = h('button', { type: 'button', id: 'erase-cancel' }, 'Cancel');
  const form = h('form', { method: 'dialog' },
    h('h2', { id: 'erase-dialog-title' }, `Erase ${id}?`),
    h('p', {}, 'They leave every segment now, each segment’s change feed records them as exited, ',
      'and every file kitle wrote is rewritten without them. This cannot be undone.'),
    h('label', { for: confirm.id }, `Type the customer id (${id}) to confirm`), confirm,
    h('label', { for: reason.id }, 'Reason (optional, kept in the erasure list)'), reason,
    error,
    h('div', { class: 'actions' }, cancel, submit));
  const dialog = h('dialog', { id: 'erase-dialog', 'aria-labelledby': 'erase-dialog-title' }, form);
  const open = h('button', { type: 'button', class: 'danger', id: 'erase-customer' }, 'Erase customer…');

  confirm.addEventListener('input', () => { submit.disabled = confirm.value.trim() !== id; });
  cancel.addEventListener('click', () => dialog.close());
  open.addEventListener('click', () => {
    confirm.value = '';
    reason.value = '';
    error.textContent = '';
    submit.disabled = true;
    dialog.showModal();
    confirm.focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (confirm.value.trim() !== id) return;
    submit.disabled = true;
    submit.textContent = 'Erasing…';
    error.textContent = '';
    try {
      const answer = await api.erase(id, reason.value.trim());
      dialog.close();
      outcome.replaceChildren(said(answer, names));
      outcome.dataset.segments = JSON.stringify(answer.segments);
      outcome.dataset.state = 'done';
      await onErased(answer);
    } catch (err) {
      error.textContent = `Not erased: ${err.message}`;
      submit.disabled = false;
      outcome.dataset.state = 'error';
    } finally {
      submit.textContent = 'Erase';
    }
  });

  return h('section', { class: 'card danger-zone', 'aria-labelledby': 'erase-title' },
    h('h2', { id: 'erase-title' }, 'Erase this customer (KVKK / GDPR)'),
    h('p', { class: 'muted small' },
      'Forgets the customer in everything kitle keeps and keeps them out of every later refresh, ',
      'preview and query, even while the shop’s own customer and event data still hold them ',
      '(erase there too).'),
    h('div', { class: 'actions' }, open),
    outcome,
    dialog);
}

function said(answer, names) {
  const left = answer.segments;
  const parts = [];
  if (answer.already_erased) {
    parts.push(h('p', { class: 'notice' }, `${answer.customer_id} was erased before: nothing changed.`));
  } else {
    parts.push(h('p', { class: 'notice good' }, `Erased ${answer.customer_id} at `, time(answer.at), ': ',
      left.length
        ? `removed from ${num(left.length)} segment${left.length === 1 ? '' : 's'}:`
        : 'they were in no segment.'));
  }
  if (left.length) {
    parts.push(h('ul', { id: 'erase-left' }, left.map((s) => h('li', { 'data-segment': s },
      h('a', { href: segmentHref(s) }, names.get(s) ?? s), h('span', { class: 'muted small mono' }, ` ${s}`)))));
  }
  if (answer.definitions_mentioning?.length) {
    parts.push(h('p', { class: 'notice' }, 'These definitions name the customer and were left as they are: ',
      answer.definitions_mentioning.join(', ')));
  }
  return h('div', {}, parts);
}
