/*
 * fluxd status UI: the browser half of fluxd/ui (an ES module, served as is, offline).
 *
 * Three hash routes draw into <main id="view">: the overview table (#/), one object's
 * page (#/object/<kind>/<namespace>/<name>) and the dependency graph (#/graph). Rows come
 * from GET api/objects once, then one EventSource on api/stream keeps them current; each
 * view reacts to "changed"/"deleted" in place, so nothing reloads the page. Building
 * blocks live in dom.js, the graph's layout and drawing in graph.js.
 */
import {
  STATES, compareRows, debounce, el, formatDuration, muted, objectHash, objectPath, quote, relativeTime,
  setAttributes, shortDigest, shortRevision, stateBadge, svgEl, timeCell,
} from './dom.js';
import { drawGraph, enablePanZoom, layoutGraph, paintEdge, paintNode, visibleGraph } from './graph.js';

const TOKEN_KEY = 'fluxd.token';
const ACTIONS = [
  { name: 'reconcile', label: 'Reconcile', done: 'reconcile requested' },
  { name: 'reconcile-source', label: 'Reconcile with source', done: 'source and object reconcile requested' },
  { name: 'suspend', label: 'Suspend', done: 'suspended' },
  { name: 'resume', label: 'Resume', done: 'resumed' },
];
// Above this many rows the overview lets off-screen rows skip layout (see app.css).
const LONG_TABLE = 200;
const COLUMNS = ['State', 'Kind', 'Namespace', 'Name', 'Revision', 'Reason', 'Message', 'Reconciled', 'Took', 'Suspended'];

const store = { rows: new Map(), actions: false };
// The last action result per object, kept so a page redrawn by the stream still shows it.
const actionNotes = new Map();
const viewRoot = document.getElementById('view');
const mount = (node) => viewRoot.replaceChildren(node);
let view = null;
let stream = null;

class AuthRequired extends Error {}

// ---- token and API --------------------------------------------------------------

// A browser that blocks storage throws on access; the token then lasts for this page only.
const session = (() => {
  try {
    return window.sessionStorage;
  } catch {
    const memory = new Map();
    return { getItem: (name) => memory.get(name), setItem: (name, value) => memory.set(name, value), removeItem: (name) => memory.delete(name) };
  }
})();
const getToken = () => session.getItem(TOKEN_KEY) || '';

function setToken(token) {
  if (token) session.setItem(TOKEN_KEY, token);
  else session.removeItem(TOKEN_KEY);
  document.getElementById('sign-out').hidden = !token;
}

// Awaits an API call; a failure goes to onError (unless the token form took over) and gives null.
async function attempt(call, onError) {
  try {
    return await call;
  } catch (error) {
    if (!(error instanceof AuthRequired)) onError(error);
    return null;
  }
}

async function api(path, options = {}) {
  const token = getToken();
  const headers = token ? { Accept: 'application/json', Authorization: `Bearer ${token}` } : { Accept: 'application/json' };
  const response = await fetch(path, { ...options, headers, cache: 'no-store' });
  const body = await response.json().catch(() => null);
  const error = body && typeof body.error === 'string' ? body.error : `${response.status} ${response.statusText}`;
  if (response.status === 401) {
    showTokenForm(token ? error : '');
    throw new AuthRequired(error);
  }
  if (!response.ok) throw new Error(error);
  return body;
}

function showTokenForm(message) {
  closeStream();
  setLive('offline');
  disposeView();
  const input = el('input', { type: 'password', id: 'token-input', name: 'token', required: true, autocomplete: 'current-password' });
  const form = el('form', { id: 'token', class: 'token-form' },
    el('h1', { text: 'Sign in to fluxd' }),
    el('p', { text: 'This fluxd asks for a Kubernetes bearer token; its RBAC decides what you may do (e.g. kubectl create token <service-account>).' }),
    el('label', { for: 'token-input', text: 'Bearer token' }), input,
    el('button', { type: 'submit', text: 'Sign in' }),
    el('p', { class: 'error', role: 'alert', text: message || '' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    start();
  });
  mount(form);
  input.focus();
}

function showError(error, retry) {
  mount(el('section', { class: 'error-page' },
    el('p', { class: 'error', role: 'alert', text: error.message }),
    el('button', { type: 'button', text: 'Retry', onclick: retry })));
}

async function loadObjects() {
  const body = await api('api/objects');
  store.rows = new Map(body.objects.map((row) => [row.key, row]));
  store.actions = body.actions === true;
}

// ---- live stream ----------------------------------------------------------------

function setLive(state) {
  const indicator = document.getElementById('live');
  indicator.textContent = state;
  indicator.className = `live live-${state}`;
}

function closeStream() {
  if (stream) stream.close();
  stream = null;
}

function openStream() {
  closeStream();
  const token = getToken();
  const source = new EventSource(`api/stream${token ? `?token=${encodeURIComponent(token)}` : ''}`);
  let dropped = false;
  stream = source;
  setLive('reconnecting');
  source.addEventListener('open', () => {
    setLive('live');
    if (dropped) attempt(resync(), () => reconnectLater(source));
    dropped = false;
  });
  source.addEventListener('error', () => {
    dropped = true;
    if (source.readyState === EventSource.CLOSED) {
      setLive('offline');
      reconnectLater(source);
    } else {
      setLive('reconnecting');
    }
  });
  source.addEventListener('changed', (event) => onStreamEvent(event, (row) => {
    store.rows.set(row.key, row);
    view?.onChanged(row);
  }));
  source.addEventListener('deleted', (event) => onStreamEvent(event, ({ key }) => {
    store.rows.delete(key);
    view?.onDeleted(key);
  }));
}

// The browser gives up on a stream the server refused (or answered with an error
// status); try again every few seconds, resynchronising first so no change is missed.
function reconnectLater(source) {
  setTimeout(async () => {
    if (stream !== source) return;
    const synced = await attempt(resync().then(() => true), () => reconnectLater(source));
    if (synced && stream === source) openStream();
  }, 5000);
}

function onStreamEvent(event, apply) {
  let data = null;
  try {
    data = JSON.parse(event.data);
  } catch {
    console.error(`fluxd UI: unreadable ${event.type} event from the stream`, event.data);
    return;
  }
  if (data && typeof data.key === 'string') apply(data);
}

async function resync() {
  await loadObjects();
  view?.onResync();
}

// ---- overview -------------------------------------------------------------------

function overviewView(query) {
  const filters = { namespace: '', kind: '', state: '', q: '' };
  for (const name of Object.keys(filters)) filters[name] = query.get(name) || '';
  const shown = new Map();
  const counts = el('div', { id: 'counts', class: 'counts', 'aria-label': 'Counts' });
  const selects = {
    namespace: el('select', { id: 'filter-namespace', 'aria-label': 'Namespace' }),
    kind: el('select', { id: 'filter-kind', 'aria-label': 'Kind' }),
    state: el('select', { id: 'filter-state', 'aria-label': 'Status' }),
  };
  const search = el('input', { id: 'search', type: 'search', placeholder: 'Search kind, name, message, revision…', 'aria-label': 'Search' });
  const summary = el('span', { class: 'summary', role: 'status' });
  const tbody = el('tbody', { role: 'rowgroup' });
  const empty = el('p', { class: 'empty', hidden: true });
  const head = el('thead', { role: 'rowgroup' },
    el('tr', { role: 'row' }, COLUMNS.map((title) => el('th', { scope: 'col', role: 'columnheader', text: title }))));
  search.value = filters.q;
  const table = el('table', { id: 'objects', class: 'objects', role: 'table' }, head, tbody);
  mount(el('section', { class: 'overview' }, counts,
    el('div', { class: 'filters' }, selects.namespace, selects.kind, selects.state, search, summary), table, empty));

  function matches(row) {
    if (filters.namespace && row.namespace !== filters.namespace) return false;
    if (filters.kind && row.kind !== filters.kind) return false;
    if (filters.state && row.state !== filters.state) return false;
    const needle = filters.q.toLowerCase();
    return !needle || [row.kind, row.namespace, row.name, row.message, row.revision].some((text) => (text || '').toLowerCase().includes(needle));
  }

  // One fragment, one insertion: the browser lays the table out once.
  function renderRows() {
    const fragment = document.createDocumentFragment();
    shown.clear();
    for (const row of [...store.rows.values()].sort(compareRows)) {
      if (!matches(row)) continue;
      const tr = rowElement(row);
      shown.set(row.key, tr);
      fragment.append(tr);
    }
    tbody.replaceChildren(fragment);
  }

  function renderControls() {
    const rows = [...store.rows.values()];
    fillOptions(selects.namespace, [...new Set(rows.map((row) => row.namespace))].sort(), filters.namespace, 'All namespaces');
    fillOptions(selects.kind, [...new Set(rows.map((row) => row.kind))].sort(), filters.kind, 'All kinds');
    fillOptions(selects.state, STATES, filters.state, 'All states');
    counts.replaceChildren(...countElements(filters, toggleFilter));
    summary.textContent = `${shown.size} of ${store.rows.size} shown`;
    table.classList.toggle('long', shown.size > LONG_TABLE);
    empty.hidden = shown.size > 0;
    empty.textContent = store.rows.size ? 'No objects match these filters.' : 'fluxd holds no Flux objects yet.';
  }

  // A burst of stream events (a resync, a big apply) redraws the counts once per frame.
  let controlsQueued = false;
  function renderControlsSoon() {
    if (controlsQueued) return;
    controlsQueued = true;
    requestAnimationFrame(() => {
      controlsQueued = false;
      renderControls();
    });
  }

  function rerender() {
    writeQuery('/', filters);
    renderRows();
    renderControls();
  }

  function toggleFilter(name, value) {
    filters[name] = filters[name] === value ? '' : value;
    rerender();
  }

  function insertInOrder(tr, row) {
    const next = [...tbody.children].find((other) => {
      const otherRow = store.rows.get(other.getAttribute('data-key'));
      return otherRow && compareRows(otherRow, row) > 0;
    });
    tbody.insertBefore(tr, next || null);
  }

  for (const [name, select] of Object.entries(selects)) {
    select.addEventListener('change', () => {
      filters[name] = select.value;
      rerender();
    });
  }
  const searchLater = debounce(() => {
    filters.q = search.value.trim();
    rerender();
  }, 80);
  search.addEventListener('input', searchLater);
  tbody.addEventListener('click', (event) => {
    const tr = event.target.closest('tr[data-key]');
    const row = tr && store.rows.get(tr.getAttribute('data-key'));
    if (row && !event.target.closest('a')) location.hash = objectHash(row);
  });
  renderRows();
  renderControls();

  return {
    onChanged(row) {
      const existing = shown.get(row.key);
      if (matches(row)) {
        const tr = rowElement(row);
        if (existing) existing.replaceWith(tr);
        else insertInOrder(tr, row);
        shown.set(row.key, tr);
      } else if (existing) {
        existing.remove();
        shown.delete(row.key);
      }
      renderControlsSoon();
    },
    onDeleted(key) {
      if (shown.has(key)) shown.get(key).remove();
      shown.delete(key);
      renderControlsSoon();
    },
    onResync: () => {
      renderRows();
      renderControls();
    },
    dispose: () => searchLater.cancel(),
  };
}

function fillOptions(select, values, current, allLabel) {
  const wanted = current && !values.includes(current) ? [...values, current] : values;
  const signature = wanted.join('\n');
  if (select.getAttribute('data-options') !== signature) {
    select.replaceChildren(el('option', { value: '', text: allLabel }), ...wanted.map((value) => el('option', { value, text: value })));
    select.setAttribute('data-options', signature);
  }
  select.value = current;
}

// Cloning one prepared row and filling its cells in is several times faster than
// building each row's dozen elements one by one, which matters at 1000 rows.
const rowTemplate = el('tr', { role: 'row' },
  el('td', { role: 'cell' }, el('span')),
  el('td', { role: 'cell' }), el('td', { role: 'cell' }),
  el('td', { role: 'cell' }, el('a')),
  el('td', { role: 'cell', class: 'mono' }), el('td', { role: 'cell' }), el('td', { role: 'cell', class: 'message' }),
  el('td', { role: 'cell', class: 'time' }), el('td', { role: 'cell', class: 'num' }), el('td', { role: 'cell' }));

function rowElement(row) {
  const tr = rowTemplate.cloneNode(true);
  const [state, kind, namespace, name, revision, reason, message, time, duration, suspended] = tr.children;
  const known = STATES.includes(row.state) ? row.state : 'unknown';
  tr.setAttribute('data-key', row.key);
  tr.setAttribute('data-state', row.state);
  tr.className = `state-${row.state}`;
  state.firstChild.className = `badge state-${known}`;
  state.firstChild.textContent = known;
  kind.textContent = row.kind;
  namespace.textContent = row.namespace;
  name.firstChild.href = objectHash(row);
  name.firstChild.textContent = row.name;
  revision.textContent = shortRevision(row.revision);
  reason.textContent = row.reason || '';
  message.textContent = row.message || '';
  time.textContent = relativeTime(row.lastReconcile);
  duration.textContent = formatDuration(row.duration);
  suspended.textContent = row.suspended ? 'yes' : '';
  if (row.revision) revision.title = row.revision;
  if (row.message) message.title = row.message;
  if (row.lastReconcile) setAttributes(time, { 'data-time': row.lastReconcile, title: row.lastReconcile });
  return tr;
}

function countElements(filters, toggleFilter) {
  const perState = new Map();
  const perKind = new Map();
  for (const row of store.rows.values()) {
    perState.set(row.state, (perState.get(row.state) || 0) + 1);
    const kind = perKind.get(row.kind) || new Map();
    perKind.set(row.kind, kind.set(row.state, (kind.get(row.state) || 0) + 1));
  }
  const stateButtons = STATES.filter((state) => perState.has(state)).map((state) =>
    el('button', { type: 'button', class: 'count', 'data-state': state, 'aria-pressed': String(filters.state === state), onclick: () => toggleFilter('state', state) },
      stateBadge(state), el('span', { class: 'count-number', text: perState.get(state) })));
  const kindButtons = [...perKind.keys()].sort().map((kind) => {
    const states = perKind.get(kind);
    const present = STATES.filter((state) => states.has(state));
    const total = present.reduce((sum, state) => sum + states.get(state), 0);
    return el('button', {
      type: 'button', class: 'count count-kind', 'data-kind': kind, 'aria-pressed': String(filters.kind === kind),
      title: present.map((state) => `${states.get(state)} ${state}`).join(', '), onclick: () => toggleFilter('kind', kind),
    }, el('span', { class: 'count-label', text: kind }), el('span', { class: 'count-number', text: total }),
    present.filter((state) => state !== 'ready').map((state) => el('span', { class: `dot state-${state}`, text: `${states.get(state)} ${state}` })));
  });
  return [
    el('div', { class: 'count-group' }, el('span', { class: 'count-total', text: `${store.rows.size} objects` }), stateButtons),
    el('div', { class: 'count-group' }, kindButtons),
  ];
}

// ---- object page ----------------------------------------------------------------

function objectView(kind, namespace, name) {
  const key = `${kind}/${namespace}/${name}`;
  const path = `api/objects/${objectPath(kind, namespace, name)}`;
  let disposed = false;
  let health = null;
  let healthCheckedAt = 0;
  mount(el('section', { id: 'object', class: 'object', 'data-key': key }, el('p', { class: 'loading', text: `Loading ${key}…` })));

  async function load() {
    const detail = await attempt(api(path), (error) => disposed || showError(error, load));
    if (!detail || disposed) return;
    mount(objectPage(key, detail));
    applyHealth();
    if (Date.now() - healthCheckedAt > 5000) loadHealth();
  }

  // Health reads live objects from the API server: after the cached rest, and at most
  // every few seconds however often the stream redraws the page.
  async function loadHealth() {
    healthCheckedAt = Date.now();
    const body = await attempt(api(`${path}/health`), (error) => {
      const note = document.querySelector('#inventory .health-note');
      if (note) note.textContent = `Health unavailable: ${error.message}`;
    });
    if (!body || disposed) return;
    health = new Map(body.inventory.map((entry) => [entry.id, entry]));
    applyHealth();
  }

  function applyHealth() {
    if (!health) return;
    const items = document.querySelectorAll('#inventory li[data-id]');
    for (const item of items) {
      const entry = health.get(item.getAttribute('data-id'));
      if (!entry) continue;
      item.setAttribute('data-health', entry.health);
      const badge = item.querySelector('.health');
      badge.textContent = entry.health;
      badge.className = `health badge health-${entry.health}`;
      if (entry.message) item.setAttribute('title', entry.message);
    }
    const note = document.querySelector('#inventory .health-note');
    const checked = [...items].filter((item) => item.hasAttribute('data-health')).length;
    if (note) note.textContent = checked < items.length ? `Health checked for ${checked} of ${items.length} objects.` : '';
  }

  const reload = debounce(load, 300);
  load();

  return {
    onChanged(row) {
      if (row.key === key) reload();
      for (const link of document.querySelectorAll(`#object [data-ref-key="${quote(row.key)}"]`)) {
        link.replaceChildren(stateBadge(row.state), ` ${row.key}`);
      }
    },
    onDeleted(deletedKey) {
      const page = document.getElementById('object');
      if (deletedKey === key && page) page.prepend(el('p', { class: 'error deleted', role: 'alert', text: `${key} was deleted.` }));
    },
    onResync: reload,
    dispose() {
      disposed = true;
      reload.cancel();
    },
  };
}

function objectPage(key, detail) {
  const row = detail.object;
  const meta = [
    row.reason ? el('span', { text: `Reason: ${row.reason}` }) : null,
    row.revision ? el('span', { class: 'mono', title: row.revision, text: `Revision: ${shortRevision(row.revision)}` }) : null,
    row.lastReconcile ? el('span', {}, 'Last reconcile: ', timeCell('span', row.lastReconcile), row.duration === null ? '' : ` (${formatDuration(row.duration)})`) : null,
    row.suspended ? el('span', { text: 'Suspended' }) : null,
  ];
  const header = el('header', { class: 'object-header' },
    el('h1', {}, stateBadge(row.state), el('span', { text: ` ${row.kind} ` }), el('span', { class: 'object-name', text: `${row.namespace}/${row.name}` })),
    row.message ? el('p', { class: `object-message state-${row.state}`, text: row.message }) : null,
    el('p', { class: 'object-meta' }, meta),
    store.actions ? actionBar(row, detail.source) : null);
  return el('section', { id: 'object', class: 'object', 'data-key': key, 'data-state': row.state }, header,
    el('div', { class: 'object-grid' },
      panel('spec', 'Spec', specList(detail.spec || {})),
      panel('source', 'Source', sourceBlock(detail.source)),
      panel('conditions', 'Conditions', conditionsTable(detail.conditions || [])),
      panel('events', 'Events', eventsList(detail.events || [])),
      panel('inventory', 'Inventory', inventoryTree(detail.inventory || [])),
      panel('history', 'History', historyList(detail.history || [])),
      panel('dependencies', 'Depends on', referenceList(detail.dependencies || [], 'No dependencies.')),
      panel('dependents', 'Dependents', referenceList(detail.dependents || [], 'Nothing depends on this object.'))));
}

function panel(id, title, content) {
  return el('section', { id, class: `panel panel-${id}` }, el('h2', { text: title }), content);
}

function actionBar(row, source) {
  const note = actionNotes.get(row.key) || { text: '', className: 'action-result' };
  const result = el('span', { id: 'action-result', class: note.className, role: 'status', text: note.text });
  const available = ACTIONS.filter((action) => action.name !== 'reconcile-source' || source);
  const buttons = available.map((action) => el('button', { type: 'button', 'data-action': action.name, text: action.label }));
  buttons.forEach((button, index) => button.addEventListener('click', () => runAction(available[index], row, buttons, result)));
  return el('div', { class: 'actions' }, buttons, result);
}

async function runAction(action, row, buttons, result) {
  for (const button of buttons) button.disabled = true;
  result.className = 'action-result';
  result.textContent = `${action.label}…`;
  let note = null;
  const request = api(`api/actions/${action.name}/${objectPath(row.kind, row.namespace, row.name)}`, { method: 'POST' });
  await attempt(request.then(() => {
    note = { text: action.done, className: 'action-result ok' };
  }), (error) => {
    note = { text: `${action.label} failed: ${error.message}`, className: 'action-result error' };
  });
  for (const button of buttons) button.disabled = false;
  if (!note) return;
  actionNotes.set(row.key, note);
  const current = document.getElementById('action-result');
  if (current) setAttributes(current, { text: note.text, class: note.className });
}

function describeValue(value) {
  if (value === null || typeof value !== 'object') return String(value);
  if (typeof value.kind === 'string' && typeof value.name === 'string') {
    return `${value.kind}/${value.namespace ? `${value.namespace}/` : ''}${value.name}`;
  }
  return JSON.stringify(value);
}

function specList(spec) {
  const entries = Object.entries(spec).filter(([, value]) => value !== null && value !== undefined && value !== '');
  if (!entries.length) return muted('No fields to show.');
  return el('dl', { class: 'spec' }, entries.map(([name, value]) => [el('dt', { text: name }), el('dd', { class: 'mono', text: describeValue(value) })]));
}

function referenceLink(ref) {
  return el('a', { href: objectHash(ref), 'data-ref-key': ref.key }, stateBadge(ref.state), ` ${ref.key}`);
}

function sourceBlock(source) {
  if (!source) return muted('This object has no source.');
  const state = (store.rows.get(source.key) || {}).state || 'unknown';
  const revision = source.revision ? el('span', { class: 'mono', title: source.revision, text: ` @ ${shortRevision(source.revision)}` }) : null;
  return el('p', {}, referenceLink({ ...source, state }), revision);
}

function referenceList(refs, emptyText) {
  if (!refs.length) return muted(emptyText);
  return el('ul', { class: 'refs' }, refs.map((ref) => el('li', { 'data-key': ref.key }, referenceLink(ref))));
}

function conditionsTable(conditions) {
  if (!conditions.length) return muted('No conditions yet.');
  const rows = conditions.map((condition) =>
    el('tr', { 'data-type': condition.type, class: `condition-${String(condition.status).toLowerCase()}` },
      el('td', { text: condition.type }), el('td', { text: condition.status }), el('td', { text: condition.reason || '' }),
      el('td', { class: 'wrap', text: condition.message || '' }), timeCell('td', condition.lastTransitionTime)));
  const head = el('tr', {}, ['Type', 'Status', 'Reason', 'Message', 'Since'].map((title) => el('th', { scope: 'col', text: title })));
  return el('table', { class: 'conditions' }, el('thead', {}, head), el('tbody', {}, rows));
}

function eventsList(events) {
  if (!events.length) return muted('No recent events.');
  const newestFirst = [...events].sort((a, b) => (Date.parse(b.time) || 0) - (Date.parse(a.time) || 0));
  return el('ul', { class: 'events' }, newestFirst.map((event) =>
    el('li', { class: `event event-${String(event.type).toLowerCase()}` },
      timeCell('span', event.time),
      el('span', { class: 'event-type', text: event.type }),
      el('span', { class: 'event-reason', text: event.reason || '' }),
      el('span', { class: 'event-count', text: event.count > 1 ? `×${event.count}` : '' }),
      el('span', { class: 'event-message wrap', text: event.message || '' }))));
}

// Grouped by namespace, then kind (with its API group), like `flux tree` prints it.
function inventoryTree(entries) {
  if (!entries.length) return muted('No inventory.');
  const byNamespace = new Map();
  for (const entry of entries) {
    const namespace = entry.namespace || '(cluster-scoped)';
    const kinds = byNamespace.get(namespace) || new Map();
    const kind = entry.group ? `${entry.kind}.${entry.group}` : entry.kind;
    byNamespace.set(namespace, kinds.set(kind, [...(kinds.get(kind) || []), entry]));
  }
  const namespaces = [...byNamespace.keys()].sort().map((namespace) => {
    const kinds = byNamespace.get(namespace);
    const count = [...kinds.values()].reduce((sum, list) => sum + list.length, 0);
    const kindItems = [...kinds.keys()].sort().map((kind) => el('li', { class: 'tree-kind' },
      el('span', { class: 'tree-kind-name', text: kind }),
      el('ul', {}, kinds.get(kind).sort((a, b) => (a.name < b.name ? -1 : 1)).map(inventoryItem))));
    return el('li', { class: 'tree-namespace' },
      el('details', { open: true }, el('summary', { text: `${namespace} (${count})` }), el('ul', {}, kindItems)));
  });
  return [el('p', { class: 'health-note muted', text: 'Checking health…' }), el('ul', { class: 'tree' }, namespaces)];
}

function inventoryItem(entry) {
  const apiVersion = entry.group ? `${entry.group}/${entry.version}` : entry.version;
  return el('li', { 'data-id': entry.id, title: apiVersion || null },
    el('span', { class: 'health badge health-pending', text: 'not checked' }),
    el('span', { class: 'mono', text: ` ${entry.name}` }));
}

function historyList(history) {
  if (!history.length) return muted('No history recorded.');
  return el('ol', { class: 'timeline' }, history.map(historyItem));
}

// Kustomization entries (digest, *Reconciled*) and HelmRelease snapshots (chart, *Deployed).
function historyItem(entry) {
  const status = entry.lastReconciledStatus || entry.status || 'unknown';
  const ok = /succeed|deployed|superseded/i.test(status);
  const revision = (entry.metadata || {}).revision;
  const facts = [
    entry.version === undefined ? null : `release v${entry.version}`,
    entry.chartName ? `chart ${entry.chartName}@${entry.chartVersion || '?'}` : null,
    entry.appVersion ? `app ${entry.appVersion}` : null,
    revision ? `revision ${shortRevision(revision)}` : null,
    entry.totalReconciliations ? `${entry.totalReconciliations} reconciliations` : null,
    entry.lastReconciledDuration ? `took ${entry.lastReconciledDuration}` : null,
  ].filter(Boolean);
  const first = entry.firstReconciled || entry.firstDeployed;
  const last = entry.lastReconciled || entry.lastDeployed;
  return el('li', { class: ok ? 'history-ok' : 'history-failed', 'data-digest': entry.digest || null },
    el('div', { class: 'history-head' }, el('span', { class: `badge ${ok ? 'state-ready' : 'state-failed'}`, text: status }),
      el('span', { class: 'mono', title: entry.digest || null, text: ` ${shortDigest(entry.digest)}` })),
    el('div', { class: 'history-facts', text: facts.join(' · ') }),
    el('div', { class: 'history-times muted' },
      first ? el('span', {}, 'first ', timeCell('span', first)) : null, last ? el('span', {}, ' · last ', timeCell('span', last)) : null));
}

// ---- dependency graph -----------------------------------------------------------

function graphView(query) {
  let namespace = query.get('namespace') || '';
  let data = { nodes: [], edges: [] };
  let disposed = false;
  const transform = { x: 0, y: 0, k: 1, fitted: false };
  const select = el('select', { id: 'graph-namespace', 'aria-label': 'Namespace' });
  const svg = svgEl('svg', { id: 'graph', class: 'graph', 'aria-label': 'Dependency graph: sources on the left, their consumers to the right' });
  const status = el('span', { class: 'summary', role: 'status' });
  mount(el('section', { class: 'graph-view' },
    el('div', { class: 'filters' }, select,
      el('button', { type: 'button', text: 'Fit', onclick: () => fit() }),
      el('button', { type: 'button', text: 'Refresh', onclick: () => load() }),
      el('span', { class: 'legend' }, STATES.map(stateBadge)), status),
    svg));
  select.addEventListener('change', () => {
    namespace = select.value;
    writeQuery('/graph', { namespace });
    transform.fitted = false;
    draw();
  });
  enablePanZoom(svg, transform, applyTransform);

  async function load() {
    const body = await attempt(api('api/graph'), (error) => {
      status.textContent = `Graph unavailable: ${error.message}`;
    });
    if (!body || disposed) return;
    data = body;
    draw();
  }

  function draw() {
    fillOptions(select, [...new Set(data.nodes.map((node) => node.namespace))].sort(), namespace, 'All namespaces');
    const { nodes, edges } = visibleGraph(data, namespace);
    const layout = layoutGraph(nodes, edges);
    drawGraph(svg, layout, edges);
    status.textContent = nodes.length ? `${nodes.length} objects, ${edges.length} links` : 'Nothing to draw.';
    if (transform.fitted) applyTransform();
    else fit();
  }

  function fit() {
    const viewport = svg.querySelector('.viewport');
    if (!viewport) return;
    const width = Number(viewport.getAttribute('data-width'));
    const height = Number(viewport.getAttribute('data-height'));
    const box = svg.getBoundingClientRect();
    transform.k = box.width && box.height ? Math.min(1, box.width / Math.max(width, 1), box.height / Math.max(height, 1)) : 1;
    transform.x = (box.width - width * transform.k) / 2;
    transform.y = Math.max(0, (box.height - height * transform.k) / 2);
    transform.fitted = true;
    applyTransform();
  }

  function applyTransform() {
    const viewport = svg.querySelector('.viewport');
    if (viewport) viewport.setAttribute('transform', `translate(${transform.x} ${transform.y}) scale(${transform.k})`);
  }

  const relayout = debounce(load, 1000);
  load();

  return {
    // A new object may bring new links, so it redraws; a known one only changes colour.
    onChanged(row) {
      const known = data.nodes.find((node) => node.key === row.key);
      if (!known) {
        relayout();
        return;
      }
      known.state = row.state;
      const node = svg.querySelector(`g.node[data-key="${quote(row.key)}"]`);
      if (node) paintNode(node, row.state);
      for (const edge of svg.querySelectorAll(`path.edge[data-from="${quote(row.key)}"]`)) paintEdge(edge, row.state);
    },
    onDeleted: () => relayout(),
    onResync: load,
    dispose() {
      disposed = true;
      relayout.cancel();
    },
  };
}

// ---- routing and start-up -------------------------------------------------------

// Filters live in the hash query; replaceState keeps them out of history and hashchange.
function writeQuery(path, values) {
  const query = new URLSearchParams(Object.entries(values).filter(([, value]) => value)).toString();
  history.replaceState(null, '', `#${path}${query ? `?${query}` : ''}`);
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const split = raw.indexOf('?');
  const query = new URLSearchParams(split < 0 ? '' : raw.slice(split + 1));
  try {
    return { parts: (split < 0 ? raw : raw.slice(0, split)).split('/').filter(Boolean).map(decodeURIComponent), query };
  } catch {
    return { parts: [], query };
  }
}

function disposeView() {
  view?.dispose();
  view = null;
}

function route() {
  disposeView();
  const { parts, query } = parseHash();
  const isObject = parts[0] === 'object' && parts.length === 4;
  const isGraph = parts[0] === 'graph';
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.getAttribute('data-nav') === (isGraph ? 'graph' : 'overview')) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (isObject) view = objectView(parts[1], parts[2], parts[3]);
  else if (isGraph) view = graphView(query);
  else view = overviewView(query);
  document.title = isObject ? `${parts.slice(1).join('/')} · fluxd` : `${isGraph ? 'graph' : 'overview'} · fluxd`;
}

async function start() {
  setToken(getToken());
  const loaded = await attempt(loadObjects().then(() => true), (error) => showError(error, start));
  if (!loaded) return;
  openStream();
  route();
}

window.addEventListener('hashchange', () => {
  if (!document.getElementById('token')) route();
});
document.getElementById('sign-out').addEventListener('click', (event) => {
  event.preventDefault();
  setToken('');
  closeStream();
  start();
});
setInterval(() => {
  for (const node of document.querySelectorAll('[data-time]')) node.textContent = relativeTime(node.getAttribute('data-time'));
}, 10000);
start();
