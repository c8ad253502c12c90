// Tidegate Console — the web UI. Plain ES2020 module, no framework, no build step.
// It talks to the console's JSON API (console/API.md) on the same origin.
//
// Layout of this file:
//   1. small helpers: h() builds DOM safely (text is always text, never HTML), api() calls
//      the JSON API with the CSRF header, formatting, pills, form errors
//   2. session, header, notices and the hash router
//   3. one section per view: login, fleet, routes (+ form), TOML, services (+ form),
//      blue/green, consumers (+ form, limits), plugins (+ form), history, audit
//
// Server data is only ever put into the page with textContent / text nodes (never innerHTML).

import { t, setLang, getLang, applyStatic, locale } from './i18n.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
const PERIODS = ['second', 'minute', 'hour', 'day'];
const BALANCERS = ['round_robin', 'least_conn', 'hash'];
const REFRESH_MS = 2000;

const state = {
  me: null, //          {user, role, csrf} once logged in
  view: 0, //           increases on every render; async work of an older render is dropped
  cleanups: [], //      run when leaving a view (timers)
  keepNotice: false, // keep the success notice through the next render
  focusHeading: false,
  routeQuery: '',
  auditQuery: '',
};

// ====================================================================================
// 1. Helpers
// ====================================================================================

const $ = (selector, root = document) => root.querySelector(selector);

const PROPERTIES = new Set(['checked', 'disabled', 'selected', 'readOnly', 'hidden', 'multiple', 'required']);

/**
 * Builds an element. `props`: attributes, plus `class` (string or list), `testid`
 * (data-testid), `onEVENT` handlers, boolean properties; `value` is set after the children
 * (so a <select> can take it). Children: nodes, strings (as text), arrays, null/false (skipped).
 */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (key === 'testid') el.setAttribute('data-testid', v);
    else if (key === 'value') value = v;
    else if (key.startsWith('on') && typeof v === 'function') el.addEventListener(key.slice(2).toLowerCase(), v);
    else if (PROPERTIES.has(key)) el[key] = v;
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  add(el, children);
  if (value !== undefined) el.value = String(value);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false || c === true) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces an element's children (same rules as h(): arrays flattened, null skipped). */
function setChildren(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

let uidCounter = 0;
const uid = (prefix) => `${prefix}-${++uidCounter}`;

const canEdit = () => Boolean(state.me && state.me.role === 'operator');
const enc = encodeURIComponent;

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** Deep equality of JSON values (object key order does not matter). */
function sameJson(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameJson(a[k], b[k]));
}

// ---- API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, errors = []) {
    super(message);
    this.status = status;
    this.errors = errors;
    this.sessionLost = false;
    this.retryAfter = null;
  }
}

/** One call of the JSON API. Resolves with the parsed body (null for 204); throws ApiError. */
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && path !== '/api/login' && state.me) headers['x-csrf-token'] = state.me.csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, t('err.network'));
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const message = (data && typeof data.error === 'string' && data.error) || res.statusText || String(res.status);
  const err = new ApiError(res.status, message, data && Array.isArray(data.errors) ? data.errors : []);
  err.retryAfter = res.headers.get('retry-after');
  if (res.status === 401 && path !== '/api/login') {
    err.sessionLost = true;
    sessionLost();
  }
  throw err;
}

// ---- formatting ----------------------------------------------------------------------

function fmtNumber(n, digits = 1) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return n.toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtPercent(ratio) {
  if (typeof ratio !== 'number' || !Number.isFinite(ratio)) return '—';
  const p = ratio * 100;
  return `${fmtNumber(p, p > 0 && p < 1 ? 2 : 1)} %`;
}

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'medium' });
}

const shortHash = (hash) => (hash ? String(hash).slice(0, 10) : '—');
const labelsText = (labels) => Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
const list = (v) => (Array.isArray(v) ? v : []);

function errText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('err.network');
    return t('err.status', { status: err.status, error: err.message });
  }
  return String((err && err.message) || err);
}

function errorPosition(e) {
  let s = e.field ? `${e.field}: ${e.message}` : e.message;
  if (e.line > 0) s += ` (${t('err.at', { line: e.line, column: e.column })})`;
  return s;
}

// ---- small UI pieces -----------------------------------------------------------------

function pill(kind, text) {
  return h('span', { class: `pill pill-${kind}` }, text);
}

function labelChips(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return entries.map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`));
}

function loading() {
  return h('p', { class: 'muted loading', role: 'status' }, t('common.loading'));
}

function alertBox(err) {
  return h('div', { class: 'alert alert-bad', role: 'alert', testid: 'page-error' }, errText(err));
}

function pageHead(title, intro, ...actions) {
  return h('div', { class: 'page-head' },
    h('div', { class: 'page-title' },
      h('h1', { tabindex: '-1' }, title),
      intro ? h('p', { class: 'muted intro' }, intro) : null),
    actions.flat().filter(Boolean).length ? h('div', { class: 'actions' }, actions) : null);
}

function btn(label, props = {}) {
  return h('button', { type: 'button', ...props, class: ['btn', props.class] }, label);
}

function linkBtn(href, label, props = {}) {
  return h('a', { href, ...props, class: ['btn', props.class] }, label);
}

function table(headers, rows, props = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', props,
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.class }, x.label ?? x)))),
      h('tbody', {}, rows)));
}

function emptyRow(cols, text) {
  return h('tr', {}, h('td', { colspan: String(cols), class: 'muted empty' }, text));
}

function mount(...nodes) {
  const app = $('#app');
  app.replaceChildren();
  add(app, nodes);
  if (state.focusHeading) {
    // After a navigation, move focus to the new page's heading (screen readers announce it).
    const heading = $('h1', app);
    if (heading) heading.focus({ preventScroll: true });
    if (heading && !$('.loading', app)) state.focusHeading = false;
  }
}

// ---- forms ---------------------------------------------------------------------------

/** A labelled control with an optional hint and an inline error slot (`error-KEY`). */
function field(labelText, control, { errors, key, hint, testKey } = {}) {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('h') }, hint) : null;
  const errEl = key && errors ? errors.slot(key, control, testKey) : null;
  const described = [hintEl && hintEl.id, errEl && errEl.id].filter(Boolean).join(' ');
  if (described) control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control, hintEl, errEl);
}

/** A group of checkboxes in a fieldset. */
function checkGroup(legend, items, { errors, key, hint } = {}) {
  const errEl = key && errors ? errors.slot(key) : null;
  return h('fieldset', { class: 'field checks' },
    h('legend', {}, legend),
    h('div', { class: 'check-row' }, items),
    hint ? h('p', { class: 'hint' }, hint) : null,
    errEl);
}

function checkbox(labelText, props) {
  const input = h('input', { type: 'checkbox', id: uid('c'), ...props });
  return h('label', { class: 'check', for: input.id }, input, h('span', {}, labelText));
}

/** Inline errors of one form: a slot per field and one at the top for the rest. */
class FormErrors {
  constructor(topTestId = 'error-form') {
    this.top = h('div', { class: 'field-error form-error', role: 'alert', testid: topTestId, hidden: true });
    this.slots = new Map();
  }

  slot(key, control, testKey = key) {
    const el = h('div', { class: 'field-error', id: uid('e'), testid: `error-${testKey}`, hidden: true });
    this.slots.set(key, { el, control });
    return el;
  }

  clear() {
    this.top.replaceChildren();
    this.top.hidden = true;
    for (const { el, control } of this.slots.values()) {
      el.replaceChildren();
      el.hidden = true;
      if (control) control.removeAttribute('aria-invalid');
    }
  }

  /** Shows positioned errors ({message, field?, line?, column?}) under their fields. */
  show(errors) {
    let first = null;
    for (const e of errors) {
      const slot = e.field ? this.slots.get(e.field) : null;
      const el = slot ? slot.el : this.top;
      el.append(h('div', {}, slot ? e.message : errorPosition(e)));
      el.hidden = false;
      if (slot && slot.control) slot.control.setAttribute('aria-invalid', 'true');
      first = first || el;
    }
    if (first) first.scrollIntoView({ block: 'nearest' });
  }

  /** Shows what a failed save answered: 422 errors per field, anything else at the top. */
  fail(err) {
    if (err && err.sessionLost) return;
    if (err instanceof ApiError && err.status === 422 && err.errors.length) this.show(err.errors);
    else this.show([{ message: errText(err) }]);
  }
}

/** Runs a save with its button disabled; resolves with the answer or null (errors shown). */
async function saving(button, errors, work) {
  errors.clear();
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } catch (e) {
    errors.fail(e);
    return null;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

const splitList = (text) => String(text || '').split(',').map((s) => s.trim()).filter(Boolean);

// ====================================================================================
// 2. Session, header, notices, router
// ====================================================================================

function sessionLost() {
  const had = Boolean(state.me);
  state.me = null;
  updateHeader();
  if (location.hash !== '#/login') go('#/login');
  if (had) showLoginError(t('login.expired'));
}

function go(hash, { replace = false } = {}) {
  if (location.hash === hash) {
    render();
    return;
  }
  if (replace) location.replace(hash);
  else location.hash = hash;
}

/** Renders the current view again (after a change) keeping the notice. */
function refresh() {
  state.keepNotice = true;
  render();
}

function notify(message, { keep = false } = {}) {
  const el = $('#notice');
  $('#notice-text').textContent = message;
  el.hidden = false;
  state.keepNotice = keep;
  el.scrollIntoView({ block: 'nearest' });
}

function hideNotice() {
  $('#notice').hidden = true;
  $('#notice-text').textContent = '';
}

function updateHeader(active) {
  const me = state.me;
  $('#nav').hidden = !me;
  $('#whoami').hidden = !me;
  $('#logout').hidden = !me;
  if (me) {
    $('#user-name').textContent = me.user;
    $('#user-role').textContent = t(`role.${me.role}`);
    $('#readonly-badge').hidden = me.role === 'operator';
  } else {
    $('#readonly-badge').hidden = true;
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (active && a.dataset.nav === active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const toggle = $('#lang-toggle');
  toggle.textContent = t('lang.switch');
  toggle.lang = getLang() === 'zh' ? 'en' : 'zh-CN';
}

const ROUTES = [
  { re: /^\/login$/, view: viewLogin, open: true },
  { re: /^\/fleet$/, view: viewFleet, nav: 'fleet' },
  { re: /^\/routes$/, view: viewRoutes, nav: 'routes' },
  { re: /^\/routes\/new$/, view: (m, ctx) => viewRouteForm(null, ctx), nav: 'routes' },
  { re: /^\/routes\/edit\/(.+)$/, view: (m, ctx) => viewRouteForm(decode(m[1]), ctx), nav: 'routes' },
  { re: /^\/toml$/, view: viewToml, nav: 'routes' },
  { re: /^\/services$/, view: viewServices, nav: 'services' },
  { re: /^\/services\/new$/, view: (m, ctx) => viewServiceForm(null, ctx), nav: 'services' },
  { re: /^\/services\/edit\/(.+)$/, view: (m, ctx) => viewServiceForm(decode(m[1]), ctx), nav: 'services' },
  { re: /^\/bluegreen$/, view: viewBlueGreen, nav: 'bluegreen' },
  { re: /^\/consumers$/, view: viewConsumers, nav: 'consumers' },
  { re: /^\/consumers\/new$/, view: (m, ctx) => viewConsumerForm(null, ctx), nav: 'consumers' },
  { re: /^\/consumers\/edit\/(.+)$/, view: (m, ctx) => viewConsumerForm(decode(m[1]), ctx), nav: 'consumers' },
  { re: /^\/plugins$/, view: viewPlugins, nav: 'plugins' },
  { re: /^\/plugins\/new$/, view: (m, ctx) => viewPluginForm(null, ctx), nav: 'plugins' },
  { re: /^\/plugins\/edit\/(.+)$/, view: (m, ctx) => viewPluginForm(decode(m[1]), ctx), nav: 'plugins' },
  { re: /^\/history$/, view: (m, ctx) => viewHistory(null, ctx), nav: 'history' },
  { re: /^\/history\/(\d+)$/, view: (m, ctx) => viewHistory(Number(m[1]), ctx), nav: 'history' },
  { re: /^\/audit$/, view: viewAudit, nav: 'audit' },
];

async function render() {
  for (const f of state.cleanups.splice(0)) f();
  const id = ++state.view;
  if (state.keepNotice) state.keepNotice = false;
  else hideNotice();
  const path = location.hash.replace(/^#/, '');
  let match = null;
  const route = ROUTES.find((r) => (match = path.match(r.re)));
  if (!route) {
    go(state.me ? '#/fleet' : '#/login', { replace: true });
    return;
  }
  if (!route.open && !state.me) {
    go('#/login', { replace: true });
    return;
  }
  updateHeader(route.nav);
  $('#login-view').hidden = !route.open;
  $('#app').hidden = Boolean(route.open);
  const ctx = {
    alive: () => id === state.view,
    onLeave: (f) => state.cleanups.push(f),
  };
  try {
    await route.view(match, ctx);
  } catch (e) {
    if (ctx.alive() && !e.sessionLost) mount(alertBox(e));
  }
}

// ====================================================================================
// 3. Views
// ====================================================================================

// ---- login ---------------------------------------------------------------------------

function showLoginError(message) {
  const el = $('#login-error');
  el.textContent = message;
  el.hidden = !message;
}

function viewLogin() {
  document.title = `${t('login.title')} — ${t('app.name')}`;
  $('#login-password').value = '';
  $('#login-user').focus();
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const user = $('#login-user').value.trim();
  const password = $('#login-password').value;
  showLoginError('');
  if (!user || !password) {
    showLoginError(t('login.missing'));
    return;
  }
  const submit = $('#login-submit');
  submit.disabled = true;
  try {
    const me = await api('POST', '/api/login', { user, password });
    state.me = me;
    $('#login-password').value = '';
    go('#/fleet');
  } catch (e) {
    let message;
    if (e.status === 401) message = t('login.wrong', { error: e.message });
    else if (e.status === 429) message = t('login.tooMany', { seconds: e.retryAfter || '300', error: e.message });
    else message = errText(e);
    showLoginError(message);
    $('#login-password').select();
  } finally {
    submit.disabled = false;
  }
}

async function onLogout() {
  try {
    await api('POST', '/api/logout');
  } catch {
    // The session is gone either way.
  }
  state.me = null;
  showLoginError('');
  go('#/login');
}

// ---- fleet ---------------------------------------------------------------------------

async function viewFleet(m, ctx) {
  document.title = `${t('nav.fleet')} — ${t('app.name')}`;
  const summary = h('div', { class: 'summary', 'aria-live': 'polite' });
  const problem = h('div', {});
  const body = h('div', {}, loading());
  mount(pageHead(t('fleet.title'), t('fleet.intro')), summary, problem, body);
  let timer = null;
  ctx.onLeave(() => clearTimeout(timer));
  const tick = async () => {
    try {
      const data = await api('GET', '/api/fleet');
      if (!ctx.alive()) return;
      problem.replaceChildren();
      summary.replaceChildren(...fleetSummary(data));
      body.replaceChildren(fleetTable(list(data && data.gateways)));
    } catch (e) {
      if (!ctx.alive() || e.sessionLost) return;
      problem.replaceChildren(alertBox(e));
    }
    if (ctx.alive()) timer = setTimeout(tick, REFRESH_MS);
  };
  await tick();
}

function fleetSummary(data) {
  const gateways = list(data.gateways);
  const config = data.config || {};
  const stale = gateways.filter((g) => g.stale).length;
  const down = gateways.filter((g) => !g.up).length;
  const rps = gateways.reduce((sum, g) => sum + (g.up && Number.isFinite(g.rps) ? g.rps : 0), 0);
  return [
    h('span', {}, t('fleet.configVersion', { version: config.version ?? '—' }), ' ',
      h('code', { title: config.hash || '' }, shortHash(config.hash))),
    h('span', {}, t('fleet.count', { count: gateways.length })),
    down ? pill('bad', t('fleet.downCount', { count: down })) : null,
    stale ? pill('warn', t('fleet.staleCount', { count: stale })) : null,
    h('span', {}, t('fleet.totalRps', { rps: fmtNumber(rps) })),
    h('span', { class: 'muted' }, t('fleet.updated', { time: new Date().toLocaleTimeString(locale()) })),
  ].filter(Boolean);
}

function fleetTable(gateways) {
  const headers = [
    t('fleet.col.gateway'), t('fleet.col.health'), t('fleet.col.config'), t('fleet.col.registry'),
    { label: t('fleet.col.rps'), class: 'num' }, { label: t('fleet.col.errors'), class: 'num' },
    { label: t('fleet.col.p99'), class: 'num' }, { label: t('fleet.col.websockets'), class: 'num' },
    t('fleet.col.topTenants'), t('fleet.col.topRejected'),
  ];
  const rows = gateways.length
    ? gateways.map(fleetRow)
    : [emptyRow(headers.length, t('fleet.none'))];
  return table(headers, rows, { class: 'fleet' });
}

function fleetRow(g) {
  const up = Boolean(g.up);
  const figure = (text) => (up ? text : '—');
  return h('tr', { testid: `fleet-row-${g.name}`, class: g.stale ? 'stale' : null },
    h('td', {}, h('strong', {}, g.name), h('div', { class: 'muted small' }, g.admin || ''),
      !up && g.error ? h('div', { class: 'small text-bad' }, g.error) : null),
    h('td', { class: 'pills' },
      up ? pill('ok', t('fleet.up')) : pill('bad', t('fleet.down')),
      up ? (g.ready ? pill('ok', t('fleet.ready')) : pill('warn', t('fleet.notReady'))) : null),
    h('td', {},
      g.version != null ? h('span', {}, t('fleet.version', { version: g.version }), ' ') : null,
      h('code', { title: g.hash || '' }, shortHash(g.hash)),
      g.stale ? h('div', {}, pill('warn', t('fleet.stale'))) : null),
    h('td', {}, registryPill(g.registry)),
    h('td', { class: 'num' }, figure(fmtNumber(g.rps))),
    h('td', { class: 'num' }, figure(fmtPercent(g.error_ratio))),
    h('td', { class: 'num' }, figure(g.p99_ms == null ? '—' : fmtNumber(g.p99_ms))),
    h('td', { class: 'num' }, figure(fmtNumber(g.websockets, 0))),
    h('td', {}, tenantRates(g.top_tenants)),
    h('td', {}, tenantRates(g.top_rejected)));
}

function registryPill(registry) {
  if (registry === 'up') return pill('ok', t('fleet.registry.up'));
  if (registry === 'down') return pill('bad', t('fleet.registry.down'));
  return h('span', { class: 'muted' }, t('fleet.registry.unused'));
}

function tenantRates(rates) {
  const items = list(rates);
  if (!items.length) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'plain' },
    items.map((r) => h('li', {}, h('span', {}, r.tenant), ' ', h('span', { class: 'muted' }, t('common.perSecond', { rps: fmtNumber(r.rps) })))));
}

// ---- routes --------------------------------------------------------------------------

function routeTarget(r) {
  if (r.service) return r.service;
  if (r.respond) return t('routes.responds', { status: r.respond.status ?? 200 });
  if (r.redirect) return t('routes.redirects', { to: r.redirect.to ?? '' });
  return '—';
}

function splitSummary(split) {
  const entries = list(split);
  if (!entries.length) return null;
  return entries.map((s) => `${labelsText(s.labels) || '*'}: ${s.weight ?? 0}`).join(' · ');
}

function routeMatches(r, query) {
  if (!query) return true;
  const hay = [r.name, r.path, r.service, ...list(r.hosts)].filter(Boolean).join(' ').toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((word) => hay.includes(word));
}

async function viewRoutes(m, ctx) {
  document.title = `${t('nav.routes')} — ${t('app.name')}`;
  mount(pageHead(t('routes.title'), t('routes.intro')), loading());
  const routes = list(await api('GET', '/api/routes'));
  if (!ctx.alive()) return;
  const editable = canEdit();
  const tbody = h('tbody');
  const count = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const search = h('input', {
    type: 'search', id: uid('search'), testid: 'route-search', value: state.routeQuery,
    placeholder: t('routes.searchPlaceholder'), autocomplete: 'off',
    oninput: () => { state.routeQuery = search.value; fill(); },
  });
  const headers = [t('routes.col.name'), t('routes.col.hosts'), t('routes.col.path'), t('routes.col.methods'),
    t('routes.col.target'), t('routes.col.plugins'), t('routes.col.split'), { label: t('common.actions'), class: 'actions-col' }];

  const fill = () => {
    const shown = routes.filter((r) => routeMatches(r, state.routeQuery.trim()));
    tbody.replaceChildren(...(shown.length
      ? shown.map((r) => routeRow(r, editable, ctx))
      : [emptyRow(headers.length, routes.length ? t('routes.noMatch') : t('routes.none'))]));
    count.textContent = t('routes.count', { shown: shown.length, total: routes.length });
  };
  fill();

  mount(
    pageHead(t('routes.title'), t('routes.intro'),
      editable ? linkBtn('#/routes/new', t('routes.new'), { class: 'btn-primary', testid: 'route-new' }) : null,
      h('a', { href: '#/toml', class: 'btn btn-link', testid: 'toml-link' }, t('routes.advancedToml'))),
    h('div', { class: 'toolbar' }, h('label', { for: search.id }, t('routes.search')), search),
    count,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'routes' },
        h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.class }, x.label ?? x)))),
        tbody)));
}

function routeRow(r, editable, ctx) {
  const name = r.name;
  const methods = list(r.methods);
  const hosts = list(r.hosts);
  const plugins = list(r.plugins);
  const split = splitSummary(r.split);
  return h('tr', { testid: `route-row-${name}` },
    h('td', {}, h('a', { href: `#/routes/edit/${enc(name)}` }, h('strong', {}, name))),
    h('td', {}, hosts.length ? hosts.join(', ') : h('span', { class: 'muted' }, t('routes.anyHost'))),
    h('td', {}, h('code', {}, r.path || '/')),
    h('td', {}, methods.length ? methods.join(', ') : h('span', { class: 'muted' }, t('routes.anyMethod'))),
    h('td', {}, routeTarget(r), r.strip_prefix ? h('div', { class: 'muted small' }, t('routes.stripsPrefix')) : null),
    h('td', {}, plugins.length ? plugins.join(', ') : h('span', { class: 'muted' }, '—')),
    h('td', {}, split || h('span', { class: 'muted' }, '—')),
    h('td', { class: 'actions-col' },
      editable ? h('div', { class: 'row-actions' },
        linkBtn(`#/routes/edit/${enc(name)}`, t('common.edit'), { class: 'btn-small', testid: `route-edit-${name}`, 'aria-label': t('routes.editNamed', { name }) }),
        btn(t('common.delete'), {
          class: 'btn-small btn-danger', testid: `route-delete-${name}`, 'aria-label': t('routes.deleteNamed', { name }),
          onclick: (ev) => deleteItem('routes', name, ev.currentTarget, ctx, 'routes.confirmDelete', 'routes.deleted'),
        }))
        : h('a', { href: `#/routes/edit/${enc(name)}`, class: 'btn btn-small' }, t('common.view'))));
}

/// The start of every edit form: its title and a loading state.
function beginForm(form, name) {
  document.title = `${name === null ? t(`${form}.newTitle`) : t(`${form}.editTitle`, { name })} — ${t('app.name')}`;
  mount(loading());
}

const backLink = (kind) => h('a', { href: `#/${kind}`, class: 'btn btn-link' }, t('common.backToList'));

/// An edit form for an item that does not exist (any more).
function notFound(form, kind, name) {
  mount(pageHead(t(`${form}.editTitle`, { name })), h('p', { class: 'alert alert-bad', role: 'alert' }, t(`${kind}.notFound`, { name })), backLink(kind));
}

/// Deletes one item after a confirm; `kind` is the API collection (routes, services,
/// consumers) and `confirmKey`/`doneKey` the messages.
async function deleteItem(kind, name, button, ctx, confirmKey, doneKey) {
  if (!window.confirm(t(confirmKey, { name }))) return;
  button.disabled = true;
  try {
    await api('DELETE', `/api/${kind}/${enc(name)}`);
    if (!ctx.alive()) return;
    notify(t(doneKey, { name }), { keep: true });
    refresh();
  } catch (e) {
    button.disabled = false;
    if (!e.sessionLost && ctx.alive()) $('#app').prepend(alertBox(e));
  }
}

async function viewRouteForm(name, ctx) {
  const isNew = name === null;
  beginForm('routeForm', name);
  const [routes, services, plugins] = await Promise.all([
    api('GET', '/api/routes'), api('GET', '/api/services'), api('GET', '/api/plugins'),
  ]);
  if (!ctx.alive()) return;
  const route = isNew ? {} : list(routes).find((r) => r.name === name);
  const back = backLink('routes');
  if (!route) {
    notFound('routeForm', 'routes', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors();

  const nameInput = h('input', { type: 'text', testid: 'field-name', value: route.name || '', required: true, autocomplete: 'off', spellcheck: 'false' });
  const hostsInput = h('input', { type: 'text', testid: 'field-hosts', value: list(route.hosts).join(', '), placeholder: 'api.example.com, *.example.org', autocomplete: 'off', spellcheck: 'false' });
  const pathInput = h('input', { type: 'text', testid: 'field-path', value: route.path ?? '', placeholder: '/', autocomplete: 'off', spellcheck: 'false' });
  const methodBoxes = METHODS.map((method) => checkbox(method, {
    testid: `field-methods-${method}`, value: method, checked: list(route.methods).map((x) => String(x).toUpperCase()).includes(method),
  }));
  const serviceNames = list(services).map((s) => s.name);
  if (route.service && !serviceNames.includes(route.service)) serviceNames.push(route.service);
  const serviceSelect = h('select', { testid: 'field-service', value: route.service || '' },
    h('option', { value: '' }, t('routeForm.noService')),
    serviceNames.map((s) => h('option', { value: s }, s)));
  const stripBox = checkbox(t('routeForm.stripPrefix'), { testid: 'field-strip-prefix', checked: Boolean(route.strip_prefix) });
  const pluginNames = list(plugins).map((p) => p.name);
  for (const p of list(route.plugins)) if (!pluginNames.includes(p)) pluginNames.push(p);
  const pluginBoxes = pluginNames.map((p) => {
    const info = list(plugins).find((x) => x.name === p);
    return checkbox(info && info.type ? `${p} (${info.type})` : p, { testid: `field-plugin-${p}`, value: p, checked: list(route.plugins).includes(p) });
  });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'route-save' }, t('common.save'));

  const answersDirectly = !route.service && (route.respond || route.redirect);
  const form = h('form', { testid: 'route-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('routeForm.name'), nameInput, { errors, key: 'name', hint: t('routeForm.nameHint') }),
      field(t('routeForm.hosts'), hostsInput, { errors, key: 'hosts', hint: t('routeForm.hostsHint') }),
      field(t('routeForm.path'), pathInput, { errors, key: 'path', hint: t('routeForm.pathHint') }),
      checkGroup(t('routeForm.methods'), methodBoxes, { errors, key: 'methods', hint: t('routeForm.methodsHint') }),
      field(t('routeForm.service'), serviceSelect, {
        errors, key: 'service',
        hint: answersDirectly ? t('routeForm.answersDirectly', { what: routeTarget(route) }) : t('routeForm.serviceHint'),
      }),
      h('div', { class: 'field' }, stripBox, h('p', { class: 'hint' }, t('routeForm.stripPrefixHint')), errors.slot('strip_prefix')),
      checkGroup(t('routeForm.plugins'), pluginBoxes.length ? pluginBoxes : h('span', { class: 'muted' }, t('routeForm.noPlugins')),
        { errors, key: 'plugins', hint: t('routeForm.pluginsHint') }),
      route.split && list(route.split).length
        ? h('p', { class: 'hint' }, t('routeForm.hasSplit', { split: splitSummary(route.split) }), ' ', h('a', { href: '#/bluegreen' }, t('nav.bluegreen')))
        : null),
    h('div', { class: 'form-actions' },
      editable ? save : null,
      back,
      h('a', { href: '#/toml', class: 'btn btn-link', testid: 'toml-link' }, t('routes.advancedToml'))));

  async function submit() {
    if (!editable) return;
    const newName = nameInput.value.trim();
    if (!newName) {
      errors.clear();
      errors.show([{ field: 'name', message: t('v.required') }]);
      nameInput.focus();
      return;
    }
    const checked = (boxes) => boxes.map((l) => $('input', l)).filter((i) => i.checked).map((i) => i.value);
    const strip = $('input', stripBox).checked;
    const body = {
      name: newName,
      hosts: splitList(hostsInput.value),
      path: pathInput.value.trim() || null,
      methods: checked(methodBoxes),
      service: serviceSelect.value || null,
      // Unticked: leave the key out of the file (false is the default) unless it was written.
      strip_prefix: strip ? true : (route.strip_prefix === undefined ? null : false),
      plugins: checked(pluginBoxes),
    };
    const answer = await saving(save, errors, () => api('PUT', `/api/routes/${enc(isNew ? newName : name)}`, body));
    if (!answer || !ctx.alive()) return;
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/routes');
  }

  mount(pageHead(isNew ? t('routeForm.newTitle') : t('routeForm.editTitle', { name }), editable ? t('routeForm.intro') : t('common.readOnlyIntro')), form);
}

// ---- advanced: TOML ------------------------------------------------------------------

async function viewToml(m, ctx) {
  document.title = `${t('toml.title')} — ${t('app.name')}`;
  mount(loading());
  const config = await api('GET', '/api/config');
  if (!ctx.alive()) return;
  const editable = canEdit();
  const errors = new FormErrors('toml-errors');
  const result = h('div', { class: 'result', 'aria-live': 'polite', testid: 'toml-result' });
  const text = h('textarea', {
    id: uid('toml'), testid: 'toml-text', class: 'code', rows: '28', wrap: 'off', spellcheck: 'false', autocomplete: 'off',
    readOnly: !editable, value: config.text || '', 'aria-label': t('toml.textLabel'),
  });
  const message = h('input', { type: 'text', id: uid('msg'), testid: 'toml-message', placeholder: t('toml.messagePlaceholder'), autocomplete: 'off' });
  const validate = btn(t('toml.validate'), { testid: 'toml-validate' });
  const save = btn(t('common.save'), { class: 'btn-primary', testid: 'toml-save' });

  const showErrors = (err) => {
    if (err && err.sessionLost) return;
    if (!(err instanceof ApiError && err.status === 422 && err.errors.length)) {
      errors.fail(err);
      return;
    }
    errors.top.append(h('div', {}, t('toml.invalid')));
    const ul = h('ul', { class: 'plain error-list' });
    for (const e of err.errors) {
      const where = e.line > 0 ? t('toml.lineColumn', { line: e.line, column: e.column }) : '';
      ul.append(h('li', {},
        where ? h('button', { type: 'button', class: 'btn-link linkish', onclick: () => selectLine(text, e.line, e.column) }, where) : null,
        where ? ' ' : null, e.message));
    }
    errors.top.append(ul);
    errors.top.hidden = false;
  };

  validate.addEventListener('click', async () => {
    result.replaceChildren();
    errors.clear();
    validate.disabled = true;
    try {
      await api('POST', '/api/validate', { text: text.value });
      if (ctx.alive()) result.replaceChildren(pill('ok', t('toml.valid')));
    } catch (e) {
      if (ctx.alive()) showErrors(e);
    } finally {
      validate.disabled = false;
    }
  });

  save.addEventListener('click', async () => {
    result.replaceChildren();
    errors.clear();
    save.disabled = true;
    try {
      const answer = await api('PUT', '/api/config', { text: text.value, message: message.value.trim() });
      if (!ctx.alive()) return;
      notify(t('common.savedVersion', { what: t('toml.config'), version: answer.version }), { keep: true });
      refresh();
    } catch (e) {
      if (ctx.alive()) showErrors(e);
    } finally {
      save.disabled = false;
    }
  });

  mount(
    pageHead(t('toml.title'), editable ? t('toml.intro') : t('common.readOnlyIntro')),
    h('p', { class: 'muted small' },
      t('toml.current', { version: config.version ?? '—' }), ' ', h('code', { title: config.hash || '' }, shortHash(config.hash)),
      config.store ? ` · ${t('toml.store', { store: config.store })}` : null),
    h('div', { class: 'card form form-wide' },
      errors.top,
      h('label', { for: text.id, class: 'block-label' }, t('toml.textLabel')),
      text,
      h('p', { class: 'hint' }, t('toml.secretsHint')),
      result,
      editable ? h('div', { class: 'form-actions wrap' },
        validate,
        h('label', { for: message.id, class: 'inline-label' }, t('toml.message')), message,
        save) : null,
      h('a', { href: '#/routes', class: 'btn btn-link' }, t('common.backToRoutes'))));
}

/** Puts the cursor on a line (1-based) of a textarea and scrolls to it. */
function selectLine(textarea, line, column) {
  const lines = textarea.value.split('\n');
  let start = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) start += lines[i].length + 1;
  const lineText = lines[line - 1] || '';
  textarea.focus();
  textarea.setSelectionRange(start + Math.max(0, Math.min((column || 1) - 1, lineText.length)), start + lineText.length);
  const lineHeight = textarea.scrollHeight / Math.max(1, lines.length);
  textarea.scrollTop = Math.max(0, (line - 4) * lineHeight);
}

// ---- services ------------------------------------------------------------------------

const STATE_PILLS = { usable: 'ok', weight_zero: 'neutral', unhealthy: 'bad', ejected: 'warn' };

function instanceState(s) {
  const kind = STATE_PILLS[s] || 'neutral';
  const key = `state.${s}`;
  const label = t(key);
  return pill(kind, label === key ? String(s ?? '—') : label);
}

async function viewServices(m, ctx) {
  document.title = `${t('nav.services')} — ${t('app.name')}`;
  mount(pageHead(t('services.title'), t('services.intro')), loading());
  const services = list(await api('GET', '/api/services'));
  if (!ctx.alive()) return;
  const editable = canEdit();
  mount(
    pageHead(t('services.title'), t('services.intro'),
      editable ? linkBtn('#/services/new', t('services.new'), { class: 'btn-primary', testid: 'service-new' }) : null),
    services.length ? services.map((s) => serviceCard(s, editable, ctx)) : h('p', { class: 'muted' }, t('services.none')));
}

function serviceCard(s, editable, ctx) {
  const endpoints = list(s.endpoints);
  const instances = list(s.instances);
  const config = s.nacos
    ? h('div', {},
      h('h3', {}, t('services.nacosBinding')),
      h('dl', { class: 'kv' },
        h('dt', {}, t('services.nacosService')), h('dd', {}, s.nacos.service || '—'),
        h('dt', {}, t('services.nacosGroup')), h('dd', {}, s.nacos.group || 'DEFAULT_GROUP'),
        h('dt', {}, t('services.nacosClusters')), h('dd', {}, list(s.nacos.clusters).join(', ') || t('services.allClusters'))))
    : h('div', {},
      h('h3', {}, t('services.endpoints')),
      table([t('services.col.addr'), { label: t('services.col.weight'), class: 'num' }, t('services.col.labels')],
        endpoints.length
          ? endpoints.map((e) => h('tr', {}, h('td', {}, h('code', {}, e.addr)), h('td', { class: 'num' }, String(e.weight ?? 1)), h('td', {}, labelChips(e.labels))))
          : [emptyRow(3, t('services.noEndpoints'))]));
  return h('section', { class: 'card', testid: `service-${s.name}`, 'aria-labelledby': `svc-${s.name}` },
    h('div', { class: 'card-head' },
      h('h2', { id: `svc-${s.name}` }, s.name),
      h('span', { class: 'muted' }, t('services.lbIs', { lb: t(`lb.${s.lb || 'round_robin'}`) })),
      s.health_check ? pill('neutral', t('services.activeChecks')) : null,
      editable ? h('div', { class: 'row-actions push' },
        linkBtn(`#/services/edit/${enc(s.name)}`, t('common.edit'), { class: 'btn-small', testid: `service-edit-${s.name}` }),
        btn(t('common.delete'), { class: 'btn-small btn-danger', testid: `service-delete-${s.name}`, onclick: (ev) => deleteItem('services', s.name, ev.currentTarget, ctx, 'services.confirmDelete', 'common.deleted') }))
        : null),
    config,
    h('h3', {}, t('services.live')),
    table([t('services.col.gateway'), t('services.col.addr'), { label: t('services.col.weight'), class: 'num' }, t('services.col.labels'), t('services.col.state')],
      instances.length
        ? instances.map((i) => h('tr', {},
          h('td', {}, i.gateway || '—'), h('td', {}, h('code', {}, i.addr)), h('td', { class: 'num' }, String(i.weight ?? '—')),
          h('td', {}, labelChips(i.labels)), h('td', {}, instanceState(i.state))))
        : [emptyRow(5, t('services.noInstances'))]));
}

/** `addr weight key=value,key=value` per line → endpoints, or the first problem. */
function parseEndpoints(text) {
  const endpoints = [];
  const problems = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    const endpoint = { addr: parts.shift() };
    if (parts.length && /^\d+$/.test(parts[0])) {
      const weight = Number(parts.shift());
      if (weight !== 1) endpoint.weight = weight; // 1 is the default
    }
    else if (parts.length && !parts[0].includes('=')) {
      problems.push(t('services.badWeight', { line: i + 1, value: parts[0] }));
      return;
    }
    if (parts.length) {
      const labels = {};
      for (const pair of parts.join(',').split(',').map((x) => x.trim()).filter(Boolean)) {
        const eq = pair.indexOf('=');
        if (eq <= 0) {
          problems.push(t('services.badLabel', { line: i + 1, value: pair }));
          return;
        }
        labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
      }
      endpoint.labels = labels;
    }
    endpoints.push(endpoint);
  });
  return { endpoints, problems };
}

const endpointLine = (e) => [e.addr, e.weight ?? 1, Object.entries(e.labels || {}).map(([k, v]) => `${k}=${v}`).join(',')].filter((x) => x !== '').join(' ');

async function viewServiceForm(name, ctx) {
  const isNew = name === null;
  beginForm('serviceForm', name);
  const services = list(await api('GET', '/api/services'));
  if (!ctx.alive()) return;
  const svc = isNew ? {} : services.find((s) => s.name === name);
  const back = backLink('services');
  if (!svc) {
    notFound('serviceForm', 'services', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors();
  const nameInput = h('input', { type: 'text', testid: 'field-name', value: svc.name || '', autocomplete: 'off', spellcheck: 'false' });
  const lbSelect = h('select', { testid: 'field-lb', value: svc.lb || 'round_robin' }, BALANCERS.map((lb) => h('option', { value: lb }, t(`lb.${lb}`))));
  const hashKey = h('input', { type: 'text', testid: 'field-hash-key', value: svc.hash_key || '', placeholder: 'header:x-user-id', autocomplete: 'off', spellcheck: 'false' });
  const hashField = field(t('serviceForm.hashKey'), hashKey, { errors, key: 'hash_key', hint: t('serviceForm.hashKeyHint') });
  const sourceName = uid('source');
  const useNacos = Boolean(svc.nacos);
  const staticRadio = h('input', { type: 'radio', name: sourceName, id: uid('r'), testid: 'field-source-static', value: 'static', checked: !useNacos });
  const nacosRadio = h('input', { type: 'radio', name: sourceName, id: uid('r'), testid: 'field-source-nacos', value: 'nacos', checked: useNacos });
  const endpointsText = h('textarea', {
    testid: 'field-endpoints', class: 'code', rows: '6', spellcheck: 'false', autocomplete: 'off',
    value: list(svc.endpoints).map(endpointLine).join('\n'), placeholder: '10.0.0.5:8080 1 stage=blue\n10.0.0.6:8080 1 stage=green',
  });
  const nacos = svc.nacos || {};
  const nacosService = h('input', { type: 'text', testid: 'field-nacos-service', value: nacos.service || '', autocomplete: 'off', spellcheck: 'false' });
  const nacosGroup = h('input', { type: 'text', testid: 'field-nacos-group', value: nacos.group || '', placeholder: 'DEFAULT_GROUP', autocomplete: 'off', spellcheck: 'false' });
  const nacosClusters = h('input', { type: 'text', testid: 'field-nacos-clusters', value: list(nacos.clusters).join(', '), autocomplete: 'off', spellcheck: 'false' });
  const staticPart = h('div', { class: 'subform' },
    field(t('serviceForm.endpoints'), endpointsText, { errors, key: 'endpoints', hint: t('serviceForm.endpointsHint') }));
  const nacosErr = errors.slot('nacos', nacosService);
  const nacosPart = h('div', { class: 'subform' },
    field(t('services.nacosService'), nacosService, { hint: t('serviceForm.nacosServiceHint') }),
    field(t('services.nacosGroup'), nacosGroup),
    field(t('services.nacosClusters'), nacosClusters, { hint: t('serviceForm.clustersHint') }),
    nacosErr);
  // Connections and health: empty number fields mean "the default" (shown as placeholder).
  const numberInput = (testid, value, placeholder, min) => h('input', {
    type: 'number', testid, min: String(min), step: '1', inputmode: 'numeric', class: 'count',
    value: value ?? '', placeholder: String(placeholder),
  });
  const retries = numberInput('field-retries', svc.retries, 2, 0);
  retries.max = '7';
  const connectTimeout = numberInput('field-connect-timeout-ms', svc.connect_timeout_ms, 1000, 1);
  const hc = svc.health_check || {};
  const hcBox = checkbox(t('serviceForm.hcEnabled'), { testid: 'field-health-check', checked: Boolean(svc.health_check) });
  const hcType = h('select', { testid: 'field-health-check-type', value: hc.type || 'http' },
    [...new Set(['http', 'tcp', hc.type].filter(Boolean))].map((x) => h('option', { value: x }, ['http', 'tcp'].includes(x) ? t(`serviceForm.hcType.${x}`) : x)));
  const hcPath = h('input', { type: 'text', testid: 'field-health-check-path', value: hc.path || '', placeholder: '/', autocomplete: 'off', spellcheck: 'false' });
  const hcInterval = numberInput('field-health-check-interval-ms', hc.interval_ms, 1000, 1);
  const hcTimeout = numberInput('field-health-check-timeout-ms', hc.timeout_ms, 500, 1);
  const hcHealthy = numberInput('field-health-check-healthy-threshold', hc.healthy_threshold, 2, 1);
  const hcUnhealthy = numberInput('field-health-check-unhealthy-threshold', hc.unhealthy_threshold, 2, 1);
  const hcPathField = field(t('serviceForm.hcPath'), hcPath, { errors, key: 'health_check.path', testKey: 'health_check-path', hint: t('serviceForm.hcPathHint') });
  const hcPart = h('div', { class: 'subform' },
    field(t('serviceForm.hcType'), hcType, { errors, key: 'health_check.type', testKey: 'health_check-type', hint: t('serviceForm.hcTypeHint') }),
    hcPathField,
    h('div', { class: 'field-grid' },
      field(t('serviceForm.hcInterval'), hcInterval, { errors, key: 'health_check.interval_ms', testKey: 'health_check-interval_ms' }),
      field(t('serviceForm.hcTimeout'), hcTimeout, { errors, key: 'health_check.timeout_ms', testKey: 'health_check-timeout_ms' }),
      field(t('serviceForm.hcHealthy'), hcHealthy, { errors, key: 'health_check.healthy_threshold', testKey: 'health_check-healthy_threshold' }),
      field(t('serviceForm.hcUnhealthy'), hcUnhealthy, { errors, key: 'health_check.unhealthy_threshold', testKey: 'health_check-unhealthy_threshold' })),
    h('p', { class: 'hint' }, t('serviceForm.hcThresholdHint')));
  const hcErr = errors.slot('health_check', $('input', hcBox));
  $('input', hcBox).setAttribute('aria-describedby', hcErr.id);
  const ps = svc.passive || {};
  const passiveFailures = numberInput('field-passive-failures', ps.failures, 3, 0);
  const passiveEject = numberInput('field-passive-eject-ms', ps.eject_ms, 10000, 1);
  const passive5xx = checkbox(t('serviceForm.passive5xx'), { testid: 'field-passive-count-5xx', checked: Boolean(ps.count_5xx) });
  const passiveErr = errors.slot('passive', passiveFailures);
  const sync = () => {
    hashField.hidden = lbSelect.value !== 'hash';
    staticPart.hidden = nacosRadio.checked;
    nacosPart.hidden = !nacosRadio.checked;
    hcPart.hidden = !$('input', hcBox).checked;
    hcPathField.hidden = hcType.value !== 'http';
  };
  lbSelect.addEventListener('change', sync);
  staticRadio.addEventListener('change', sync);
  nacosRadio.addEventListener('change', sync);
  $('input', hcBox).addEventListener('change', sync);
  hcType.addEventListener('change', sync);
  sync();
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'service-save' }, t('common.save'));
  const form = h('form', { testid: 'service-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('serviceForm.name'), nameInput, { errors, key: 'name' }),
      field(t('serviceForm.lb'), lbSelect, { errors, key: 'lb', hint: t('serviceForm.lbHint') }),
      hashField,
      h('fieldset', { class: 'field checks' },
        h('legend', {}, t('serviceForm.source')),
        h('div', { class: 'check-row' },
          h('label', { class: 'check', for: staticRadio.id }, staticRadio, h('span', {}, t('serviceForm.sourceStatic'))),
          h('label', { class: 'check', for: nacosRadio.id }, nacosRadio, h('span', {}, t('serviceForm.sourceNacos'))))),
      staticPart,
      nacosPart,
      h('h2', { class: 'form-section' }, t('serviceForm.connections')),
      h('div', { class: 'field-grid' },
        field(t('serviceForm.retries'), retries, { errors, key: 'retries', hint: t('serviceForm.retriesHint') }),
        field(t('serviceForm.connectTimeout'), connectTimeout, { errors, key: 'connect_timeout_ms', hint: t('serviceForm.connectTimeoutHint') })),
      h('fieldset', { class: 'field' },
        h('legend', {}, t('serviceForm.hc')),
        h('p', { class: 'hint hint-lead' }, t('serviceForm.hcHint')),
        hcBox,
        hcErr,
        hcPart),
      h('fieldset', { class: 'field' },
        h('legend', {}, t('serviceForm.passive')),
        h('p', { class: 'hint hint-lead' }, t('serviceForm.passiveHint')),
        h('div', { class: 'field-grid' },
          field(t('serviceForm.passiveFailures'), passiveFailures, { errors, key: 'passive.failures', testKey: 'passive-failures', hint: t('serviceForm.passiveFailuresHint') }),
          field(t('serviceForm.passiveEject'), passiveEject, { errors, key: 'passive.eject_ms', testKey: 'passive-eject_ms' })),
        passive5xx,
        passiveErr)),
    h('div', { class: 'form-actions' }, editable ? save : null, back,
      h('a', { href: '#/toml', class: 'btn btn-link' }, t('routes.advancedToml'))));

  async function submit() {
    if (!editable) return;
    errors.clear();
    const newName = nameInput.value.trim();
    if (!newName) {
      errors.show([{ field: 'name', message: t('v.required') }]);
      return;
    }
    const lb = lbSelect.value;
    const body = {
      name: newName,
      lb: lb === 'round_robin' && !svc.lb ? null : lb,
      hash_key: lb === 'hash' ? (hashKey.value.trim() || null) : null,
    };
    const problems = [];
    if (lb === 'hash' && !hashKey.value.trim()) problems.push({ field: 'hash_key', message: t('serviceForm.hashKeyRequired') });
    // A whole number from the field, undefined when empty; a problem when it is not one.
    const readNumber = (input, key, min, max = Infinity) => {
      const raw = input.value.trim();
      if (input.validity.badInput) {
        problems.push({ field: key, message: t('serviceForm.badNumber', { min }) });
        return undefined;
      }
      if (raw === '') return undefined;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < min || n > max) {
        problems.push({ field: key, message: max === Infinity ? t('serviceForm.badNumber', { min }) : t('serviceForm.badRange', { min, max }) });
        return undefined;
      }
      return n;
    };
    // Keys the form does not touch are left out (the server keeps them); a cleared key is null.
    const setKey = (key, value) => {
      const had = svc[key] !== undefined && svc[key] !== null;
      if (value === undefined) {
        if (had) body[key] = null;
      } else if (!had || !sameJson(value, svc[key])) {
        body[key] = value;
      }
    };
    const retriesValue = readNumber(retries, 'retries', 0, 7);
    const connectValue = readNumber(connectTimeout, 'connect_timeout_ms', 1);
    const check = {};
    if ($('input', hcBox).checked) {
      const type = hcType.value;
      if (type !== 'http' || hc.type !== undefined) check.type = type;
      const path = hcPath.value.trim();
      if (type === 'http' && path) {
        if (!path.startsWith('/')) problems.push({ field: 'health_check.path', message: t('serviceForm.hcPathSlash') });
        check.path = path;
      }
      const numbers = [
        ['interval_ms', hcInterval], ['timeout_ms', hcTimeout],
        ['healthy_threshold', hcHealthy], ['unhealthy_threshold', hcUnhealthy],
      ];
      for (const [key, input] of numbers) {
        const n = readNumber(input, `health_check.${key}`, 1);
        if (n !== undefined) check[key] = n;
      }
      // An empty table would be dropped from the file: keep the type so the check stays on.
      if (!Object.keys(check).length) check.type = type;
    }
    const passive = {};
    const failures = readNumber(passiveFailures, 'passive.failures', 0);
    if (failures !== undefined) passive.failures = failures;
    const eject = readNumber(passiveEject, 'passive.eject_ms', 1);
    if (eject !== undefined) passive.eject_ms = eject;
    const count5xx = $('input', passive5xx).checked;
    if (count5xx || ps.count_5xx !== undefined) passive.count_5xx = count5xx;
    if (nacosRadio.checked) {
      if (!nacosService.value.trim()) problems.push({ field: 'nacos', message: t('serviceForm.nacosRequired') });
      body.endpoints = null;
      body.nacos = { service: nacosService.value.trim() };
      if (nacosGroup.value.trim()) body.nacos.group = nacosGroup.value.trim();
      const clusters = splitList(nacosClusters.value);
      if (clusters.length) body.nacos.clusters = clusters;
    } else {
      const parsed = parseEndpoints(endpointsText.value);
      problems.push(...parsed.problems.map((message) => ({ field: 'endpoints', message })));
      body.endpoints = parsed.endpoints;
      body.nacos = null;
    }
    if (problems.length) {
      errors.show(problems);
      return;
    }
    setKey('retries', retriesValue);
    setKey('connect_timeout_ms', connectValue);
    setKey('health_check', Object.keys(check).length ? check : undefined);
    setKey('passive', Object.keys(passive).length ? passive : undefined);
    const answer = await saving(save, errors, () => api('PUT', `/api/services/${enc(isNew ? newName : name)}`, body));
    if (!answer || !ctx.alive()) return;
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/services');
  }

  mount(pageHead(isNew ? t('serviceForm.newTitle') : t('serviceForm.editTitle', { name }), editable ? t('serviceForm.intro') : t('common.readOnlyIntro')), form);
}

// ---- blue / green --------------------------------------------------------------------

/** Label key → values, from a service's endpoints, its live instances and a route's split. */
function labelIndex(service, split) {
  const index = new Map();
  const addLabels = (labels) => {
    for (const [k, v] of Object.entries(labels || {})) {
      if (!index.has(k)) index.set(k, new Set());
      index.get(k).add(String(v));
    }
  };
  if (service) {
    list(service.endpoints).forEach((e) => addLabels(e.labels));
    list(service.instances).forEach((e) => addLabels(e.labels));
  }
  list(split).forEach((s) => addLabels(s.labels));
  return index;
}

/** The endpoints of a service (static, or the live instances for a discovered one), one per address. */
function serviceEndpoints(service) {
  if (!service) return [];
  if (list(service.endpoints).length) return list(service.endpoints);
  const seen = new Map();
  for (const i of list(service.instances)) if (!seen.has(i.addr)) seen.set(i.addr, i);
  return [...seen.values()];
}

/** Which label key and values are blue and green: from the split, else stage=blue / stage=green. */
function defaultSubsets(route, index) {
  const split = list(route.split);
  if (split.length === 2) {
    const a = Object.entries(split[0].labels || {});
    const b = Object.entries(split[1].labels || {});
    if (a.length === 1 && b.length === 1 && a[0][0] === b[0][0]) {
      const swap = a[0][1] === 'green' || b[0][1] === 'blue';
      return { key: a[0][0], blue: String(swap ? b[0][1] : a[0][1]), green: String(swap ? a[0][1] : b[0][1]) };
    }
  }
  return subsetsForKey(index.has('stage') || !index.size ? 'stage' : [...index.keys()][0], index);
}

function subsetsForKey(key, index) {
  const values = [...(index.get(key) || [])];
  const blue = values.includes('blue') ? 'blue' : values[0] || 'blue';
  const green = values.includes('green') ? 'green' : values.find((v) => v !== blue) || 'green';
  return { key, blue, green };
}

/** Green's share (0–100) of the configured split for these subsets. */
function greenPercent(route, sub) {
  const weightOf = (value) => list(route.split)
    .filter((s) => Object.keys(s.labels || {}).length === 1 && String((s.labels || {})[sub.key]) === value)
    .reduce((sum, s) => sum + (Number(s.weight) || 0), 0);
  const blue = weightOf(sub.blue);
  const green = weightOf(sub.green);
  return blue + green > 0 ? Math.round((green * 100) / (blue + green)) : 0;
}

async function viewBlueGreen(m, ctx) {
  document.title = `${t('nav.bluegreen')} — ${t('app.name')}`;
  mount(pageHead(t('bg.title'), t('bg.intro')), loading());
  const [routes, services, fleet] = await Promise.all([
    api('GET', '/api/routes'), api('GET', '/api/services'),
    api('GET', '/api/fleet').catch((e) => { if (e.sessionLost) throw e; return null; }),
  ]);
  if (!ctx.alive()) return;
  const byName = new Map(list(services).map((s) => [s.name, s]));
  const candidates = list(routes).filter((r) => list(r.split).length || (r.service && labelIndex(byName.get(r.service)).size));
  const gateways = list(fleet && fleet.gateways);
  const fleetRps = fleet ? gateways.reduce((sum, g) => sum + (g.up && Number.isFinite(g.rps) ? g.rps : 0), 0) : null;
  mount(
    pageHead(t('bg.title'), canEdit() ? t('bg.intro') : t('common.readOnlyIntro')),
    fleetRps !== null ? h('p', { class: 'summary' }, t('bg.fleetRps', { rps: fmtNumber(fleetRps), count: gateways.length })) : null,
    candidates.length
      ? candidates.map((r) => splitCard(r, byName.get(r.service), fleetRps, ctx))
      : h('p', { class: 'muted' }, t('bg.none')));
  // Live shares per route, from every gateway's per-subset request counters, refreshed
  // while the page is open.
  const showLive = (data) => {
    const byRoute = new Map();
    for (const g of list(data && data.gateways)) {
      for (const s of list(g.subsets)) {
        const m2 = byRoute.get(s.route) || new Map();
        m2.set(s.subset, (m2.get(s.subset) || 0) + (Number.isFinite(s.rps) ? s.rps : 0));
        byRoute.set(s.route, m2);
      }
    }
    for (const r of candidates) {
      const el = document.querySelector(`[data-testid="split-live-${CSS.escape(r.name)}"]`);
      if (!el) continue;
      const shares = byRoute.get(r.name);
      const total = shares ? [...shares.values()].reduce((a, b) => a + b, 0) : 0;
      el.textContent = total > 0
        ? t('bg.live', {
          shares: [...shares.entries()].map(([k, v]) => `${k} ${Math.round((100 * v) / total)} %`).join(' · '),
          rps: fmtNumber(total),
        })
        : t('bg.liveNone');
    }
  };
  showLive(fleet);
  const tick = async () => {
    if (!ctx.alive()) return;
    try {
      showLive(await api('GET', '/api/fleet'));
    } catch (e) {
      if (e.sessionLost) return;
    }
    if (ctx.alive()) setTimeout(tick, REFRESH_MS);
  };
  setTimeout(tick, REFRESH_MS);
}

function splitCard(route, service, fleetRps, ctx) {
  const name = route.name;
  const editable = canEdit();
  const index = labelIndex(service, route.split);
  const sub = defaultSubsets(route, index);
  const endpoints = serviceEndpoints(service);
  const errors = new FormErrors(`error-split-${name}`);

  const keySelect = h('select', { id: uid('k'), testid: `split-key-${name}`, disabled: !editable });
  const blueSelect = h('select', { id: uid('b'), testid: `split-blue-${name}`, disabled: !editable });
  const greenSelect = h('select', { id: uid('g'), testid: `split-green-${name}`, disabled: !editable });
  const initial = greenPercent(route, sub);
  const percent = h('input', {
    type: 'number', id: uid('p'), testid: `split-${name}`, min: '0', max: '100', step: '1', inputmode: 'numeric',
    value: String(initial), disabled: !editable, class: 'percent',
  });
  const slider = h('input', {
    type: 'range', min: '0', max: '100', step: '1', value: String(initial), disabled: !editable,
    testid: `split-range-${name}`, 'aria-label': t('bg.percentGreen'), class: 'slider',
  });
  const bar = h('div', { class: 'split-bar', 'aria-hidden': 'true' }, h('span', { class: 'blue' }), h('span', { class: 'green' }));
  const preview = h('p', { class: 'split-preview', 'aria-live': 'polite' });
  const warnings = h('div', { class: 'warnings' });
  const apply = btn(t('bg.apply'), { class: 'btn-primary', testid: `split-apply-${name}` });

  const options = (select, values, chosen) => {
    const all = [...new Set([...values, chosen])].filter((v) => v !== '');
    select.replaceChildren(...all.map((v) => h('option', { value: v }, v)));
    select.value = chosen;
  };
  const fillSelects = () => {
    const keys = [...new Set([...index.keys(), sub.key])];
    options(keySelect, keys, sub.key);
    const values = [...(index.get(sub.key) || [])];
    options(blueSelect, values, sub.blue);
    options(greenSelect, values, sub.green);
  };
  const readPercent = () => {
    const raw = percent.value.trim();
    const p = Number(raw);
    return raw !== '' && Number.isInteger(p) && p >= 0 && p <= 100 ? p : null;
  };
  const update = () => {
    const p = readPercent();
    const shown = p === null ? 0 : p;
    bar.children[0].style.flexGrow = String(100 - shown);
    bar.children[1].style.flexGrow = String(shown);
    const countOf = (value) => endpoints.filter((e) => String((e.labels || {})[sub.key]) === value).length;
    const blueCount = countOf(sub.blue);
    const greenCount = countOf(sub.green);
    preview.replaceChildren(
      h('span', { class: 'swatch blue' }), t('bg.blueShare', { percent: 100 - shown, subset: `${sub.key}=${sub.blue}`, count: blueCount }),
      h('br'),
      h('span', { class: 'swatch green' }), t('bg.greenShare', { percent: shown, subset: `${sub.key}=${sub.green}`, count: greenCount }));
    const problems = [];
    if (p === null) problems.push(t('bg.badPercent'));
    if (sub.blue === sub.green) problems.push(t('bg.sameSubset'));
    if (p !== null && p < 100 && blueCount === 0) problems.push(t('bg.noEndpoints', { subset: `${sub.key}=${sub.blue}` }));
    if (p !== null && p > 0 && greenCount === 0) problems.push(t('bg.noEndpoints', { subset: `${sub.key}=${sub.green}` }));
    warnings.replaceChildren(...problems.map((x) => h('p', { class: 'warn-text' }, pill('warn', t('common.warning')), ' ', x)));
  };

  keySelect.addEventListener('change', () => {
    Object.assign(sub, subsetsForKey(keySelect.value, index));
    fillSelects();
    update();
  });
  blueSelect.addEventListener('change', () => { sub.blue = blueSelect.value; update(); });
  greenSelect.addEventListener('change', () => { sub.green = greenSelect.value; update(); });
  percent.addEventListener('input', () => {
    const p = readPercent();
    if (p !== null) slider.value = String(p);
    update();
  });
  slider.addEventListener('input', () => { percent.value = slider.value; update(); });
  apply.addEventListener('click', async () => {
    errors.clear();
    const p = readPercent();
    if (p === null) {
      errors.show([{ message: t('bg.badPercent') }]);
      return;
    }
    if (sub.blue === sub.green) {
      errors.show([{ message: t('bg.sameSubset') }]);
      return;
    }
    const split = [
      { labels: { [sub.key]: sub.blue }, weight: 100 - p },
      { labels: { [sub.key]: sub.green }, weight: p },
    ];
    const answer = await saving(apply, errors, () => api('PUT', `/api/routes/${enc(name)}/split`, { split }));
    if (!answer || !ctx.alive()) return;
    notify(t('bg.applied', { route: name, blue: 100 - p, green: p, version: answer.version }), { keep: true });
    refresh();
  });
  const remove = list(route.split).length && editable
    ? btn(t('bg.remove'), {
      class: 'btn-danger', testid: `split-remove-${name}`,
      onclick: async () => {
        if (!window.confirm(t('bg.confirmRemove', { route: name }))) return;
        const answer = await saving(remove, errors, () => api('PUT', `/api/routes/${enc(name)}/split`, { split: [] }));
        if (!answer || !ctx.alive()) return;
        notify(t('bg.removed', { route: name, version: answer.version }), { keep: true });
        refresh();
      },
    })
    : null;

  fillSelects();
  update();
  const current = splitSummary(route.split);
  return h('section', { class: 'card split-card', testid: `split-card-${name}`, 'aria-labelledby': `bg-${name}` },
    h('div', { class: 'card-head' },
      h('h2', { id: `bg-${name}` }, name),
      h('span', { class: 'muted' }, h('code', {}, route.path || '/'), ' → ', route.service || '—')),
    h('p', {}, h('strong', {}, t('bg.current')), ' ', current || t('bg.noSplit')),
    fleetRps !== null && current ? h('p', { class: 'muted small' }, t('bg.liveHint')) : null,
    h('p', { class: 'live-share', testid: `split-live-${name}`, 'aria-live': 'polite' }, t('bg.liveNone')),
    errors.top,
    h('div', { class: 'split-grid' },
      h('div', { class: 'field' }, h('label', { for: keySelect.id }, t('bg.labelKey')), keySelect),
      h('div', { class: 'field' }, h('label', { for: blueSelect.id }, h('span', { class: 'swatch blue' }), t('bg.blueValue')), blueSelect),
      h('div', { class: 'field' }, h('label', { for: greenSelect.id }, h('span', { class: 'swatch green' }), t('bg.greenValue')), greenSelect),
      h('div', { class: 'field' }, h('label', { for: percent.id }, t('bg.percentGreen')), h('div', { class: 'percent-row' }, slider, percent, ' %'))),
    bar,
    preview,
    warnings,
    editable ? h('div', { class: 'form-actions' }, apply, remove) : null);
}

// ---- consumers and limits ------------------------------------------------------------

async function viewConsumers(m, ctx) {
  document.title = `${t('nav.consumers')} — ${t('app.name')}`;
  mount(pageHead(t('consumers.title'), t('consumers.intro')), loading());
  const [consumers, limits] = await Promise.all([api('GET', '/api/consumers'), api('GET', '/api/limits')]);
  if (!ctx.alive()) return;
  const editable = canEdit();
  const tenants = [...new Set(list(consumers).map((c) => c.tenant).filter(Boolean))].sort();
  const datalist = h('datalist', { id: 'tenant-list' }, tenants.map((x) => h('option', { value: x })));
  const rows = list(consumers).map((c) => h('tr', { testid: `consumer-row-${c.name}` },
    h('td', {}, h('strong', {}, c.name)),
    h('td', {}, c.tenant || h('span', { class: 'muted' }, '—')),
    h('td', {}, list(c.keys).length ? h('ul', { class: 'plain' }, list(c.keys).map((k) => h('li', {}, h('code', {}, k)))) : h('span', { class: 'muted' }, '—')),
    h('td', {}, c.basic ? pill('ok', t('common.yes')) : h('span', { class: 'muted' }, t('common.no'))),
    h('td', {}, c.hmac ? pill('ok', t('common.yes')) : h('span', { class: 'muted' }, t('common.no'))),
    h('td', { class: 'actions-col' }, editable
      ? h('div', { class: 'row-actions' },
        linkBtn(`#/consumers/edit/${enc(c.name)}`, t('common.edit'), { class: 'btn-small', testid: `consumer-edit-${c.name}` }),
        btn(t('common.delete'), { class: 'btn-small btn-danger', testid: `consumer-delete-${c.name}`, onclick: (ev) => deleteItem('consumers', c.name, ev.currentTarget, ctx, 'consumers.confirmDelete', 'common.deleted') }))
      : null)));
  mount(
    pageHead(t('consumers.title'), t('consumers.intro'),
      editable ? linkBtn('#/consumers/new', t('consumers.new'), { class: 'btn-primary', testid: 'consumer-new' }) : null),
    table([t('consumers.col.name'), t('consumers.col.tenant'), t('consumers.col.keys'), t('consumers.col.basic'), t('consumers.col.hmac'), { label: t('common.actions'), class: 'actions-col' }],
      rows.length ? rows : [emptyRow(6, t('consumers.none'))], { class: 'consumers' }),
    h('h2', { class: 'section-title' }, t('limits.title')),
    h('p', { class: 'muted intro' }, t('limits.intro')),
    datalist,
    list(limits).length ? list(limits).map((l) => limitsCard(l, editable, ctx)) : h('p', { class: 'muted' }, t('limits.none')));
}

async function viewConsumerForm(name, ctx) {
  const isNew = name === null;
  beginForm('consumerForm', name);
  const consumers = list(await api('GET', '/api/consumers'));
  if (!ctx.alive()) return;
  const consumer = isNew ? {} : consumers.find((c) => c.name === name);
  const back = backLink('consumers');
  if (!consumer) {
    notFound('consumerForm', 'consumers', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors();
  const tenants = [...new Set(consumers.map((c) => c.tenant).filter(Boolean))].sort();
  const nameInput = h('input', { type: 'text', testid: 'field-name', value: consumer.name || '', autocomplete: 'off', spellcheck: 'false' });
  const tenantInput = h('input', { type: 'text', testid: 'field-tenant', value: consumer.tenant || '', list: 'tenant-options', autocomplete: 'off', spellcheck: 'false' });
  const keyInputs = [];
  const keysBox = h('div', { class: 'key-list' });
  const keysErr = errors.slot('keys');
  const addKey = () => {
    const input = h('input', {
      type: 'password', testid: `field-key-${keyInputs.length}`, autocomplete: 'new-password', spellcheck: 'false',
      'aria-label': t('consumerForm.newKeyN', { n: keyInputs.length + 1 }),
    });
    keyInputs.push(input);
    keysBox.append(input);
    return input;
  };
  addKey();
  const saved = list(consumer.keys);
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'consumer-save' }, t('common.save'));
  const form = h('form', { testid: 'consumer-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('consumerForm.name'), nameInput, { errors, key: 'name' }),
      field(t('consumerForm.tenant'), tenantInput, { errors, key: 'tenant', hint: t('consumerForm.tenantHint') }),
      h('datalist', { id: 'tenant-options' }, tenants.map((x) => h('option', { value: x }))),
      h('fieldset', { class: 'field' },
        h('legend', {}, t('consumerForm.keys')),
        h('p', { class: 'hint' }, saved.length ? t('consumerForm.savedKeys', { count: saved.length }) : t('consumerForm.noSavedKeys')),
        saved.length ? h('ul', { class: 'plain' }, saved.map((k) => h('li', {}, h('code', {}, k)))) : null,
        keysBox,
        editable ? btn(t('consumerForm.addKey'), { class: 'btn-small', testid: 'field-key-add', onclick: () => addKey().focus() }) : null,
        h('p', { class: 'hint' }, t('consumerForm.keysHint')),
        keysErr),
      (consumer.basic || consumer.hmac) ? h('p', { class: 'hint' }, t('consumerForm.otherCredentials')) : null),
    h('div', { class: 'form-actions' }, editable ? save : null, back));

  async function submit() {
    if (!editable) return;
    errors.clear();
    const newName = nameInput.value.trim();
    if (!newName) {
      errors.show([{ field: 'name', message: t('v.required') }]);
      return;
    }
    const keys = keyInputs.map((i) => i.value.trim()).filter(Boolean);
    const body = { name: newName, tenant: tenantInput.value.trim() || null };
    if (keys.length) body.keys = keys;
    if (keys.length && saved.length && !window.confirm(t('consumerForm.confirmReplace', { count: saved.length }))) return;
    const answer = await saving(save, errors, () => api('PUT', `/api/consumers/${enc(isNew ? newName : name)}`, body));
    if (!answer || !ctx.alive()) return;
    for (const i of keyInputs) i.value = '';
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/consumers');
  }

  mount(pageHead(isNew ? t('consumerForm.newTitle') : t('consumerForm.editTitle', { name }), editable ? t('consumerForm.intro') : t('common.readOnlyIntro')), form);
}

/** One key-rate-limit plugin: base limits and per-tenant overrides, edited in place. */
function limitsCard(item, editable, ctx) {
  const plugin = item.plugin;
  const model = {
    limits: clone(list(item.limits)),
    overrides: Object.entries(item.overrides || {}).map(([tenant, o]) => {
      const { limits, ...extra } = o || {};
      return { tenant, limits: clone(list(limits)), extra };
    }),
  };
  const card = h('section', { class: 'card', testid: `limits-${plugin}`, 'aria-labelledby': `lim-${plugin}` });
  const errors = new FormErrors(`error-limit-${plugin}`);
  const baseErr = errors.slot('limits', null, `limit-${plugin}-limits`);
  const overridesErr = errors.slot('overrides', null, `limit-${plugin}-overrides`);
  const save = btn(t('common.save'), { class: 'btn-primary', testid: `limit-save-${plugin}` });
  const newTenant = h('input', { type: 'text', id: uid('t'), list: 'tenant-list', testid: `limit-${plugin}-new-tenant`, autocomplete: 'off', spellcheck: 'false' });

  const rowsEditor = (rows, prefix, label) => h('div', { class: 'limit-rows', role: 'group', 'aria-label': label },
    rows.length ? rows.map((row, i) => {
      const per = h('select', {
        testid: `${prefix}-${i}-per`, 'aria-label': t('limits.perN', { n: i + 1 }), disabled: !editable,
        value: row.per || 'minute', onchange: (ev) => { row.per = ev.target.value; },
      }, [...new Set([...PERIODS, row.per].filter(Boolean))].map((p) => h('option', { value: p }, t(`per.${p}`))));
      const count = h('input', {
        type: 'number', min: '0', step: '1', inputmode: 'numeric', class: 'count', testid: `${prefix}-${i}-count`,
        'aria-label': t('limits.countN', { n: i + 1 }), value: row.count ?? '', disabled: !editable,
        oninput: (ev) => { row.count = ev.target.value; },
      });
      return h('div', { class: 'limit-row' },
        count, h('span', { class: 'muted' }, t('limits.requestsPer')), per,
        editable ? btn(t('common.remove'), {
          class: 'btn-small btn-link', testid: `${prefix}-${i}-remove`, 'aria-label': t('limits.removeRow', { n: i + 1 }),
          onclick: () => { rows.splice(i, 1); draw(); },
        }) : null);
    }) : h('p', { class: 'muted small' }, t('limits.noRows')),
    editable ? btn(t('limits.addRow'), {
      class: 'btn-small', testid: `${prefix}-add`,
      onclick: () => { rows.push({ per: 'minute', count: '' }); draw(); },
    }) : null);

  const draw = () => {
    setChildren(card,
      h('div', { class: 'card-head' },
        h('h3', { id: `lim-${plugin}` }, plugin),
        h('span', { class: 'muted' }, t('limits.keyScope', { key: item.key ?? '—', scope: item.scope ?? 'local' }))),
      errors.top,
      h('h4', {}, t('limits.base')),
      rowsEditor(model.limits, `limit-${plugin}-base`, t('limits.base')),
      baseErr,
      h('h4', {}, t('limits.overrides')),
      model.overrides.length ? null : h('p', { class: 'muted small' }, t('limits.noOverrides')),
      model.overrides.map((o, oi) => h('div', { class: 'override', testid: `limit-${plugin}-override-${o.tenant}` },
        h('div', { class: 'override-head' },
          h('strong', {}, t('limits.tenant', { tenant: o.tenant })),
          Object.keys(o.extra).length ? h('span', { class: 'muted small' }, Object.entries(o.extra).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')) : null,
          editable ? btn(t('limits.removeOverride'), {
            class: 'btn-small btn-link', testid: `limit-${plugin}-override-${o.tenant}-delete`,
            onclick: () => { model.overrides.splice(oi, 1); draw(); },
          }) : null),
        rowsEditor(o.limits, `limit-${plugin}-override-${o.tenant}`, t('limits.tenant', { tenant: o.tenant })))),
      overridesErr,
      editable ? h('div', { class: 'add-override' },
        h('label', { for: newTenant.id }, t('limits.newOverride')), newTenant,
        btn(t('limits.addOverride'), {
          class: 'btn-small', testid: `limit-${plugin}-add-override`,
          onclick: () => {
            const tenant = newTenant.value.trim();
            errors.clear();
            if (!tenant) {
              errors.show([{ field: 'overrides', message: t('limits.tenantRequired') }]);
              return;
            }
            if (model.overrides.some((o) => o.tenant === tenant)) {
              errors.show([{ field: 'overrides', message: t('limits.tenantExists', { tenant }) }]);
              return;
            }
            model.overrides.push({ tenant, limits: [{ per: 'minute', count: '' }], extra: {} });
            newTenant.value = '';
            draw();
          },
        })) : null,
      editable ? h('div', { class: 'form-actions' }, save) : null);
  };

  save.addEventListener('click', async () => {
    errors.clear();
    const problems = [];
    const rows = (src, fieldKey, who) => src.map((row, i) => {
      const raw = String(row.count ?? '').trim();
      const count = Number(raw);
      if (raw === '' || !Number.isInteger(count) || count < 0) {
        problems.push({ field: fieldKey, message: t('limits.badCount', { who, n: i + 1 }) });
      }
      return { ...row, per: row.per || 'minute', count };
    });
    const limits = rows(model.limits, 'limits', t('limits.base'));
    const overrides = {};
    for (const o of model.overrides) {
      const tenantRows = rows(o.limits, 'overrides', t('limits.tenant', { tenant: o.tenant }));
      if (!tenantRows.length && !Object.keys(o.extra).length) continue;
      overrides[o.tenant] = { ...o.extra, limits: tenantRows };
    }
    if (problems.length) {
      errors.show(problems);
      return;
    }
    const answer = await saving(save, errors, () => api('PUT', `/api/limits/${enc(plugin)}`, { limits, overrides }));
    if (!answer || !ctx.alive()) return;
    notify(t('limits.saved', { plugin, version: answer.version }), { keep: true });
    refresh();
  });

  draw();
  return card;
}

// ---- plugins -------------------------------------------------------------------------

function valueView(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, '—');
  if (typeof v === 'boolean') return t(v ? 'common.yes' : 'common.no');
  if (typeof v !== 'object') return h('span', { class: 'value' }, String(v));
  if (Array.isArray(v)) {
    if (!v.length) return h('span', { class: 'muted' }, t('common.none'));
    if (v.every((x) => x === null || typeof x !== 'object')) return h('span', { class: 'value' }, v.map(String).join(', '));
    return h('ol', { class: 'plain nested' }, v.map((x) => h('li', {}, valueView(x))));
  }
  return kvList(v);
}

function kvList(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('span', { class: 'muted' }, t('common.none'));
  return h('dl', { class: 'kv' }, entries.map(([k, v]) => [h('dt', {}, k), h('dd', {}, valueView(v))]));
}

const PLUGIN_TYPES = ['key-rate-limit', 'cc-protection', 'key-auth', 'basic-auth', 'jwt-auth', 'hmac-auth',
  'ip-restriction', 'cors', 'request-size', 'request-block', 'waf'];

/** Starting settings for a new plugin of each type (README "Plugins"); the operator edits them. */
const PLUGIN_TEMPLATES = {
  'key-rate-limit': { key: 'tenant', limits: [{ per: 'minute', count: 1000 }] },
  'cc-protection': { key: 'client_ip', rate: { per: 'second', count: 50 }, ban_seconds: 60 },
  'key-auth': { header: 'x-api-key' },
  'basic-auth': { realm: 'api' },
  'jwt-auth': { algorithms: ['RS256'], jwks_url: 'https://id.example.com/.well-known/jwks.json' },
  'hmac-auth': { clock_skew_seconds: 300 },
  'ip-restriction': { allow: ['10.0.0.0/8'] },
  cors: { origins: ['https://app.example.com'], methods: ['GET', 'POST'] },
  'request-size': { max_bytes: 1048576 },
  'request-block': { paths: ['^/internal/'] },
  waf: { mode: 'detect' },
};

const pluginTypeLabel = (type) => {
  const key = `pluginType.${type}`;
  const text = t(key);
  return text === key ? type : `${type} — ${text}`;
};

async function viewPlugins(m, ctx) {
  document.title = `${t('nav.plugins')} — ${t('app.name')}`;
  mount(pageHead(t('plugins.title'), t('plugins.intro')), loading());
  const plugins = list(await api('GET', '/api/plugins'));
  if (!ctx.alive()) return;
  const editable = canEdit();
  mount(
    pageHead(t('plugins.title'), t('plugins.intro'),
      editable ? linkBtn('#/plugins/new', t('plugins.new'), { class: 'btn-primary', testid: 'plugin-new' }) : null),
    plugins.length ? plugins.map((p) => pluginCard(p, editable, ctx)) : h('p', { class: 'muted' }, t('plugins.none')));
}

function pluginCard(p, editable, ctx) {
  const problem = h('div', { class: 'alert alert-bad', role: 'alert', testid: `plugin-error-${p.name}`, hidden: true });
  return h('section', { class: 'card', testid: `plugin-${p.name}`, 'aria-labelledby': `plg-${p.name}` },
    h('div', { class: 'card-head' },
      h('h2', { id: `plg-${p.name}` }, p.name),
      pill('neutral', p.type || '—'),
      editable ? h('div', { class: 'row-actions push' },
        linkBtn(`#/plugins/edit/${enc(p.name)}`, t('common.edit'), {
          class: 'btn-small', testid: `plugin-edit-${p.name}`, 'aria-label': t('plugins.editNamed', { name: p.name }),
        }),
        btn(t('common.delete'), {
          class: 'btn-small btn-danger', testid: `plugin-delete-${p.name}`, 'aria-label': t('plugins.deleteNamed', { name: p.name }),
          onclick: (ev) => deletePlugin(p, ev.currentTarget, problem, ctx),
        }))
        : null),
    problem,
    h('p', {}, h('strong', {}, t('plugins.usedBy')), ' ', routeLinks(p.routes) || h('span', { class: 'muted' }, t('plugins.unused'))),
    h('h3', {}, t('plugins.config')),
    kvList(p.config));
}

/** "api, chat" with each name a link to the route's form; null for none. */
function routeLinks(routes) {
  const names = list(routes);
  if (!names.length) return null;
  return names.map((r, i) => [i ? ', ' : '', h('a', { href: `#/routes/edit/${enc(r)}` }, r)]);
}

async function deletePlugin(p, button, problem, ctx) {
  const name = p.name;
  if (!window.confirm(t('plugins.confirmDelete', { name }))) return;
  button.disabled = true;
  problem.replaceChildren();
  problem.hidden = true;
  try {
    await api('DELETE', `/api/plugins/${enc(name)}`);
    if (!ctx.alive()) return;
    notify(t('common.deleted', { name }), { keep: true });
    refresh();
  } catch (e) {
    button.disabled = false;
    if (e.sessionLost || !ctx.alive()) return;
    if (e.status === 409) {
      // In use: say by which routes (asked again, the list on the page may be old).
      let routes = list(p.routes);
      try {
        const now = list(await api('GET', '/api/plugins')).find((x) => x.name === name);
        if (now) routes = list(now.routes);
      } catch {
        // Keep the routes the page knew.
      }
      if (!ctx.alive()) return;
      problem.append(routes.length
        ? h('span', {}, t('plugins.inUseBy', { name }), ' ', routeLinks(routes), '. ', t('plugins.inUseHowTo'))
        : h('span', {}, t('plugins.inUse', { name }), ' ', t('plugins.inUseHowTo')));
    } else {
      problem.append(errText(e));
    }
    problem.hidden = false;
    problem.scrollIntoView({ block: 'nearest' });
  }
}

/** Where JSON.parse stopped ({line, column, offset}), from the engine's message; null if unknown. */
function jsonErrorAt(text, err) {
  const message = String((err && err.message) || '');
  const lc = /line (\d+) column (\d+)/.exec(message);
  const at = /position (\d+)/.exec(message);
  let offset;
  if (at) offset = Math.min(Number(at[1]), text.length);
  else if (lc) {
    const lines = text.split('\n').slice(0, Number(lc[1]) - 1);
    offset = Math.min(lines.reduce((n, l) => n + l.length + 1, 0) + Number(lc[2]) - 1, text.length);
  } else return null;
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n'), offset };
}

async function viewPluginForm(name, ctx) {
  const isNew = name === null;
  beginForm('pluginForm', name);
  const plugins = list(await api('GET', '/api/plugins'));
  if (!ctx.alive()) return;
  const plugin = isNew ? { config: {} } : plugins.find((p) => p.name === name);
  const back = backLink('plugins');
  if (!plugin) {
    notFound('pluginForm', 'plugins', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors('error-plugin');
  const nameInput = h('input', {
    type: 'text', testid: 'plugin-field-name', value: isNew ? '' : name, readOnly: !isNew,
    autocomplete: 'off', spellcheck: 'false', placeholder: isNew ? 'waf' : null,
  });
  const types = [...PLUGIN_TYPES];
  if (plugin.type && !types.includes(plugin.type)) types.push(plugin.type);
  const typeSelect = h('select', { testid: 'plugin-field-type', value: plugin.type || '' },
    isNew ? h('option', { value: '' }, t('pluginForm.chooseType')) : null,
    types.map((x) => h('option', { value: x }, pluginTypeLabel(x))));
  const configText = h('textarea', {
    testid: 'plugin-field-config', class: 'code', rows: '14', wrap: 'off', spellcheck: 'false', autocomplete: 'off',
    value: isNew ? '{}' : JSON.stringify(plugin.config || {}, null, 2),
  });
  // A new plugin starts from an example of its type, until the operator edits the text.
  let template = configText.value;
  typeSelect.addEventListener('change', () => {
    if (!isNew || configText.value !== template) return;
    template = JSON.stringify(PLUGIN_TEMPLATES[typeSelect.value] || {}, null, 2);
    configText.value = template;
  });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'plugin-save' }, t('common.save'));
  const usedBy = routeLinks(plugin.routes);
  const form = h('form', { testid: 'plugin-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('pluginForm.name'), nameInput, {
        errors, key: 'name', testKey: 'plugin-name', hint: isNew ? t('pluginForm.nameHint') : t('pluginForm.nameFixed'),
      }),
      field(t('pluginForm.type'), typeSelect, { errors, key: 'type', testKey: 'plugin-type', hint: t('pluginForm.typeHint') }),
      field(t('pluginForm.config'), configText, { errors, key: 'config', testKey: 'plugin-config', hint: t('pluginForm.configHint') }),
      usedBy ? h('p', { class: 'hint' }, t('pluginForm.usedBy'), ' ', usedBy) : null),
    h('div', { class: 'form-actions' }, editable ? save : null, back,
      h('a', { href: '#/toml', class: 'btn btn-link' }, t('routes.advancedToml'))));

  // A refused save: the positioned errors as a list at the top (their lines are those of the
  // TOML file, not of the JSON text, so they are not put under a field).
  const baseFail = errors.fail.bind(errors);
  errors.fail = (err) => {
    if (!(err instanceof ApiError && err.status === 422 && err.errors.length)) {
      baseFail(err);
      return;
    }
    errors.top.append(h('div', {}, t('pluginForm.invalid')));
    errors.top.append(h('ul', { class: 'plain error-list' }, err.errors.map((e) => h('li', {},
      e.line > 0 ? h('code', {}, t('toml.lineColumn', { line: e.line, column: e.column })) : null,
      e.line > 0 ? ' ' : null,
      e.field && !['name', 'type'].includes(e.field) ? `${e.field}: ` : '',
      e.message))));
    if (err.errors.some((e) => e.line > 0)) errors.top.append(h('p', { class: 'hint' }, t('pluginForm.linesHint')));
    errors.top.hidden = false;
    if (err.errors.some((e) => e.field && e.field !== 'name' && e.field !== 'type')) configText.setAttribute('aria-invalid', 'true');
    errors.top.scrollIntoView({ block: 'nearest' });
  };

  async function submit() {
    if (!editable) return;
    errors.clear();
    const newName = isNew ? nameInput.value.trim() : name;
    const type = typeSelect.value;
    const problems = [];
    if (!newName) problems.push({ field: 'name', message: t('v.required') });
    else if (isNew && plugins.some((p) => p.name === newName)) problems.push({ field: 'name', message: t('pluginForm.nameTaken', { name: newName }) });
    if (!type) problems.push({ field: 'type', message: t('pluginForm.typeRequired') });
    let config;
    let badAt = null;
    const raw = configText.value;
    try {
      config = raw.trim() ? JSON.parse(raw) : {};
    } catch (e) {
      badAt = jsonErrorAt(raw, e);
      problems.push({
        field: 'config',
        message: badAt
          ? t('pluginForm.badJsonAt', { line: badAt.line, column: badAt.column, error: e.message })
          : t('pluginForm.badJson', { error: e.message }),
      });
    }
    if (config !== undefined) {
      if (config === null || typeof config !== 'object' || Array.isArray(config)) {
        problems.push({ field: 'config', message: t('pluginForm.notObject') });
      } else if (Object.prototype.hasOwnProperty.call(config, 'type')) {
        problems.push({ field: 'config', message: t('pluginForm.typeInConfig') });
      }
    }
    if (problems.length) {
      errors.show(problems);
      const first = { name: nameInput, type: typeSelect, config: configText }[problems[0].field];
      if (first) first.focus();
      if (first === configText && badAt) configText.setSelectionRange(badAt.offset, badAt.offset);
      return;
    }
    const answer = await saving(save, errors, () => api('PUT', `/api/plugins/${enc(newName)}`, { type, config }));
    if (!answer || !ctx.alive()) return;
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/plugins');
  }

  mount(pageHead(isNew ? t('pluginForm.newTitle') : t('pluginForm.editTitle', { name }), editable ? t('pluginForm.intro') : t('common.readOnlyIntro')), form);
}

// ---- history -------------------------------------------------------------------------

function diffView(diff) {
  const pre = h('pre', { class: 'diff', testid: 'history-diff' });
  const lines = String(diff || '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) return h('p', { class: 'muted' }, t('history.noDiff'));
  for (const line of lines) {
    let kind = '';
    if (line.startsWith('+++') || line.startsWith('---')) kind = 'diff-meta';
    else if (line.startsWith('@@')) kind = 'diff-hunk';
    else if (line.startsWith('+')) kind = 'diff-add';
    else if (line.startsWith('-')) kind = 'diff-del';
    pre.append(h('span', { class: ['diff-line', kind] }, `${line}\n`));
  }
  return pre;
}

async function viewHistory(selected, ctx) {
  document.title = `${t('nav.history')} — ${t('app.name')}`;
  mount(pageHead(t('history.title'), t('history.intro')), loading());
  const [versions, detail] = await Promise.all([
    api('GET', '/api/history'),
    selected !== null ? api('GET', `/api/history/${selected}`) : Promise.resolve(null),
  ]);
  if (!ctx.alive()) return;
  const items = list(versions);
  const latest = items.length ? items[0].version : null;
  const open = (v) => go(`#/history/${v}`);
  const rows = items.map((v) => h('tr', {
    testid: `history-row-${v.version}`, class: ['clickable', v.version === selected && 'selected'],
    tabindex: '0', 'aria-current': v.version === selected ? 'true' : null,
    onclick: () => open(v.version),
    onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(v.version); } },
  },
  h('td', { class: 'num nowrap' }, h('a', { href: `#/history/${v.version}` }, String(v.version)), v.version === latest ? [' ', pill('ok', t('history.current'))] : null),
  h('td', { class: 'nowrap' }, fmtTime(v.at)),
  h('td', {}, v.author || '—'),
  h('td', {}, v.message || ''),
  h('td', { class: 'num changes' }, h('span', { class: 'text-add' }, `+${v.added ?? 0}`), ' ', h('span', { class: 'text-del' }, `−${v.removed ?? 0}`))));
  const detailView = detail ? historyDetail(detail, latest, ctx) : null;
  mount(
    pageHead(t('history.title'), t('history.intro')),
    detailView,
    table([{ label: t('history.col.version'), class: 'num' }, t('history.col.time'), t('history.col.author'), t('history.col.message'), { label: t('history.col.changes'), class: 'num' }],
      rows.length ? rows : [emptyRow(5, t('history.none'))], { class: 'history' }));
  if (detailView) detailView.scrollIntoView({ block: 'start' });
}

function historyDetail(d, latest, ctx) {
  const v = d.version;
  const restore = canEdit() && v !== latest
    ? btn(t('history.restore'), { class: 'btn-primary', testid: `history-restore-${v}`, onclick: () => restoreVersion(v, restore, ctx) })
    : null;
  return h('section', { class: 'card', testid: `history-detail-${v}`, 'aria-labelledby': 'history-detail-title' },
    h('div', { class: 'card-head' },
      h('h2', { id: 'history-detail-title' }, t('history.versionN', { version: v })),
      v === latest ? pill('ok', t('history.current')) : null,
      h('div', { class: 'row-actions push' }, restore, h('a', { href: '#/history', class: 'btn btn-link' }, t('common.close')))),
    h('p', { class: 'muted' }, t('history.by', { author: d.author || '—', time: fmtTime(d.at) }), d.message ? ` — ${d.message}` : ''),
    h('h3', {}, t('history.diff')),
    diffView(d.diff),
    h('details', {},
      h('summary', {}, t('history.fullText')),
      h('pre', { class: 'code-block', testid: 'history-text' }, d.text || '')));
}

async function restoreVersion(version, button, ctx) {
  if (!window.confirm(t('history.confirmRestore', { version }))) return;
  button.disabled = true;
  try {
    const answer = await api('POST', `/api/history/${version}/restore`);
    if (!ctx.alive()) return;
    notify(t('history.restored', { version, newVersion: answer.version }), { keep: true });
    go('#/history');
  } catch (e) {
    button.disabled = false;
    if (!e.sessionLost && ctx.alive()) button.closest('section').prepend(alertBox(e));
  }
}

// ---- audit ---------------------------------------------------------------------------

function auditAction(action) {
  const key = `audit.action.${action}`;
  const text = t(key);
  return text === key ? action : text;
}

async function viewAudit(m, ctx) {
  document.title = `${t('nav.audit')} — ${t('app.name')}`;
  mount(pageHead(t('audit.title'), t('audit.intro')), loading());
  const entries = list(await api('GET', '/api/audit'));
  if (!ctx.alive()) return;
  const tbody = h('tbody');
  const search = h('input', {
    type: 'search', id: uid('search'), testid: 'audit-search', value: state.auditQuery, autocomplete: 'off',
    placeholder: t('audit.searchPlaceholder'), oninput: () => { state.auditQuery = search.value; fill(); },
  });
  const fill = () => {
    const q = state.auditQuery.trim().toLowerCase();
    const shown = entries.filter((e) => !q || [e.user, e.action, auditAction(e.action), e.detail].join(' ').toLowerCase().includes(q));
    tbody.replaceChildren(...(shown.length ? shown.map((e) => h('tr', { class: e.ok ? null : 'refused' },
      h('td', { class: 'nowrap' }, fmtTime(e.at)),
      h('td', {}, e.user || '—'),
      h('td', {}, auditAction(e.action)),
      h('td', { class: 'detail' }, e.detail || ''),
      h('td', {}, e.ok ? pill('ok', t('audit.ok')) : pill('bad', t('audit.refused')))))
      : [emptyRow(5, t('audit.none'))]));
  };
  fill();
  mount(
    pageHead(t('audit.title'), t('audit.intro')),
    h('div', { class: 'toolbar' }, h('label', { for: search.id }, t('audit.search')), search),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'audit' },
        h('thead', {}, h('tr', {}, [t('audit.col.time'), t('audit.col.user'), t('audit.col.action'), t('audit.col.detail'), t('audit.col.result')].map((x) => h('th', { scope: 'col' }, x)))),
        tbody)));
}

// ====================================================================================
// Start
// ====================================================================================

async function boot() {
  applyStatic();
  $('#login-form').addEventListener('submit', onLoginSubmit);
  $('#logout').addEventListener('click', onLogout);
  $('#notice-close').addEventListener('click', hideNotice);
  // The skip link must not change the hash (the router owns it).
  $('.skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    const target = $('#app').hidden ? $('#login-user') : ($('#app h1') || $('#app'));
    target.focus();
  });
  $('#lang-toggle').addEventListener('click', () => {
    setLang(getLang() === 'zh' ? 'en' : 'zh');
    applyStatic();
    refresh();
  });
  window.addEventListener('hashchange', () => {
    state.focusHeading = true;
    render();
  });
  try {
    const res = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' });
    state.me = res.ok ? await res.json() : null;
  } catch {
    state.me = null;
  }
  const hash = location.hash;
  if (!state.me && hash !== '#/login') go('#/login', { replace: true });
  else if (state.me && (!hash || hash === '#' || hash === '#/' || hash === '#/login')) go('#/fleet', { replace: true });
  else render();
}

boot();
