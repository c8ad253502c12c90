// The hash router: #/path → a view. ROUTES maps each path to a view name; app.js hands over the
// views (name → function(arg, ctx)) with registerViews(). A view's ctx: alive() turns false
// once another render has started (its async work is then dropped), onLeave(f) runs f when the
// page is left (timers).

import { $ } from './dom.js';
import { state } from './state.js';
import { mount, alertBox } from './ui.js';
import { hideNotice } from './notice.js';
import { updateHeader } from './header.js';

let renders = 0; //     increases on every render; async work of an older render is dropped
const cleanups = []; // run when leaving a view (timers)
let views = {}; //      view name → function(arg, ctx), from registerViews()

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Path → view name; `arg` turns the match into the view's first argument (else the match). */
const ROUTES = [
  { re: /^\/login$/, view: 'login', open: true },
  { re: /^\/fleet$/, view: 'fleet', nav: 'fleet' },
  { re: /^\/routes$/, view: 'routes', nav: 'routes' },
  { re: /^\/routes\/new$/, view: 'routeForm', arg: () => null, nav: 'routes' },
  { re: /^\/routes\/edit\/(.+)$/, view: 'routeForm', arg: (m) => decode(m[1]), nav: 'routes' },
  { re: /^\/toml$/, view: 'toml', nav: 'routes' },
  { re: /^\/services$/, view: 'services', nav: 'services' },
  { re: /^\/services\/new$/, view: 'serviceForm', arg: () => null, nav: 'services' },
  { re: /^\/services\/edit\/(.+)$/, view: 'serviceForm', arg: (m) => decode(m[1]), nav: 'services' },
  { re: /^\/bluegreen$/, view: 'bluegreen', nav: 'bluegreen' },
  { re: /^\/consumers$/, view: 'consumers', nav: 'consumers' },
  { re: /^\/consumers\/new$/, view: 'consumerForm', arg: () => null, nav: 'consumers' },
  { re: /^\/consumers\/edit\/(.+)$/, view: 'consumerForm', arg: (m) => decode(m[1]), nav: 'consumers' },
  { re: /^\/plugins$/, view: 'plugins', nav: 'plugins' },
  { re: /^\/plugins\/new$/, view: 'pluginForm', arg: () => null, nav: 'plugins' },
  { re: /^\/plugins\/edit\/(.+)$/, view: 'pluginForm', arg: (m) => decode(m[1]), nav: 'plugins' },
  { re: /^\/history$/, view: 'history', arg: () => null, nav: 'history' },
  { re: /^\/history\/(\d+)$/, view: 'history', arg: (m) => Number(m[1]), nav: 'history' },
  { re: /^\/audit$/, view: 'audit', nav: 'audit' },
];

/** The view functions by name (every name in ROUTES). */
export function registerViews(table) {
  views = table;
}

export function go(hash, { replace = false } = {}) {
  if (location.hash === hash) {
    render();
    return;
  }
  if (replace) location.replace(hash);
  else location.hash = hash;
}

/** Renders the current view again (after a change) keeping the notice. */
export function refresh() {
  state.keepNotice = true;
  render();
}

export async function render() {
  for (const f of cleanups.splice(0)) f();
  const id = ++renders;
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
    alive: () => id === renders,
    onLeave: (f) => cleanups.push(f),
  };
  try {
    await views[route.view](route.arg ? route.arg(match) : match, ctx);
  } catch (e) {
    if (ctx.alive() && !e.sessionLost) mount(alertBox(e));
  }
}
