// The console's entry point: asks the service whether a token is needed (GET /v1/auth),
// asks the user for one when it is, and renders the view of the URL's hash:
//
//   #/segments                 the list (and the ready-made segments)
//   #/segments/{id}            one segment          #/segments/{id}/edit   the builder on it
//   #/new[?template={id}]      the builder, empty or from a ready-made segment
//   #/customers[/{id}][?segment={id}]               a customer, and why (not) in a segment
//   #/sql                      analyst SQL

import { api, isAdmin, keepToken, onUnauthorized, session, storedToken } from './api.js';
import { errorNotice, h } from './dom.js';
import * as builder from './pages/builder.js';
import * as customer from './pages/customer.js';
import * as segment from './pages/segment.js';
import * as segments from './pages/segments.js';
import * as sql from './pages/sql.js';

const view = document.getElementById('view');
const dialog = document.getElementById('token-dialog');

const ROUTES = [
  [/^\/segments$/, 'segments', () => [segments, {}], 'Segments'],
  [/^\/segments\/([^/]+)\/edit$/, 'segments', (m) => [builder, { id: decodeURIComponent(m[1]) }], 'Edit segment'],
  [/^\/segments\/([^/]+)$/, 'segments', (m) => [segment, { id: decodeURIComponent(m[1]) }], 'Segment'],
  [/^\/new$/, 'new', (m, q) => [builder, { template: q.get('template') ?? undefined }], 'New segment'],
  [/^\/customers(?:\/([^/]+))?$/, 'customers', (m, q) => [customer, { id: m[1] ? decodeURIComponent(m[1]) : undefined, segment: q.get('segment') ?? undefined }], 'Customers'],
  [/^\/sql$/, 'sql', () => [sql, {}], 'SQL'],
];

let rendering = 0;

async function route() {
  const hash = window.location.hash.replace(/^#/, '') || '/segments';
  const [path, search = ''] = hash.split('?');
  const found = ROUTES.map(([re, nav, make, title]) => [path.match(re), nav, make, title]).find(([m]) => m);
  if (!found) {
    window.location.hash = '#/segments';
    return;
  }
  const [match, nav, make, title] = found;
  const [page, params] = make(match, new URLSearchParams(search));
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${title} · kitle`;
  rendering += 1;
  const mine = rendering;
  const container = h('div', { class: 'page', 'data-page': nav, 'data-route': `#${hash}` });
  view.replaceChildren(container);
  try {
    await page.render(container, params);
    if (mine === rendering) container.dataset.ready = 'yes';
  } catch (e) {
    if (mine !== rendering || e.status === 401) return;
    container.replaceChildren(h('h1', {}, title), errorNotice(e));
    container.dataset.ready = 'error';
  }
}

function showSession() {
  const el = document.getElementById('session');
  el.replaceChildren();
  if (!session.scope) return;
  el.append(h('span', { class: `badge ${isAdmin() ? 'admin' : ''}`, id: 'scope-badge', 'data-scope': session.scope },
    isAdmin() ? 'admin access' : 'read access'));
  if (session.tokensRequired) {
    el.append(h('button', {
      type: 'button', class: 'link', id: 'sign-out',
      onclick: () => { keepToken(null); session.scope = null; showSession(); askToken(); },
    }, 'Sign out'));
  }
}

/** Shows the token dialog until a token the service knows is given. */
function askToken(message) {
  const input = document.getElementById('token-input');
  const error = document.getElementById('token-error');
  error.textContent = message ?? '';
  input.value = '';
  view.replaceChildren(h('p', { class: 'muted' }, 'Sign in to see the segments.'));
  if (!dialog.open) dialog.showModal();
  input.focus();
}

document.getElementById('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = document.getElementById('token-input');
  const error = document.getElementById('token-error');
  const token = input.value.trim();
  try {
    const status = await api.auth(token);
    if (!status.scope) throw new Error('The service did not grant this token a scope.');
    keepToken(token);
    Object.assign(session, { tokensRequired: status.tokens_required, scope: status.scope });
    dialog.close();
    showSession();
    route();
  } catch (err) {
    error.textContent = err.status === 401 ? 'The service does not know this token.' : err.message;
    input.select();
  }
});
// Escape would leave the console without a token: keep the dialog until one is given.
dialog.addEventListener('cancel', (e) => e.preventDefault());

onUnauthorized(() => {
  keepToken(null);
  session.scope = null;
  showSession();
  askToken('The token is no longer accepted: sign in again.');
});

async function boot() {
  let status;
  try {
    status = await api.auth(storedToken() ?? '');
  } catch (e) {
    if (e.status === 401) {
      keepToken(null);
      status = await api.auth('');
    } else {
      view.replaceChildren(h('h1', {}, 'kitle'), errorNotice(e));
      return;
    }
  }
  Object.assign(session, { tokensRequired: status.tokens_required, scope: status.scope });
  showSession();
  window.addEventListener('hashchange', () => {
    if (session.scope) route();
  });
  if (!status.scope) {
    askToken();
    return;
  }
  route();
}

boot();
