// Tidegate Console — the web UI. Plain ES2020 modules, no framework, no build step.
// It talks to the console's JSON API (console/API.md) on the same origin.
//
// This file starts the UI; the rest is one module per concern:
//   lib/    dom.js (h() builds DOM safely: text is always text, never HTML), data.js (JSON
//           helpers), i18n.js (strings in English and Chinese), state.js (the session),
//           api.js (the JSON API with the CSRF header), format.js, ui.js (pills, tables, page
//           head, mount), forms.js (fields, inline errors), crud.js (what the list and edit
//           pages share), notice.js, header.js, router.js (#/path → view)
//   views/  one module per page: login, fleet, routes, route-form, toml, services,
//           service-form, bluegreen, consumers, consumer-form, limits, plugins, plugin-form,
//           history, audit
//
// Server data is only ever put into the page with textContent / text nodes (never innerHTML).

import { applyStatic, setLang, getLang } from './lib/i18n.js';
import { $ } from './lib/dom.js';
import { state } from './lib/state.js';
import { onSessionLost } from './lib/api.js';
import { hideNotice } from './lib/notice.js';
import { go, refresh, render, registerViews } from './lib/router.js';
import { onLoginSubmit, onLogout, sessionLost, viewLogin } from './views/login.js';
import { viewFleet } from './views/fleet.js';
import { viewRoutes } from './views/routes.js';
import { viewRouteForm } from './views/route-form.js';
import { viewToml } from './views/toml.js';
import { viewServices } from './views/services.js';
import { viewServiceForm } from './views/service-form.js';
import { viewBlueGreen } from './views/bluegreen.js';
import { viewConsumers } from './views/consumers.js';
import { viewConsumerForm } from './views/consumer-form.js';
import { viewPlugins } from './views/plugins.js';
import { viewPluginForm } from './views/plugin-form.js';
import { viewHistory } from './views/history.js';
import { viewAudit } from './views/audit.js';

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

onSessionLost(sessionLost);
registerViews({
  login: viewLogin,
  fleet: viewFleet,
  routes: viewRoutes,
  routeForm: viewRouteForm,
  toml: viewToml,
  services: viewServices,
  serviceForm: viewServiceForm,
  bluegreen: viewBlueGreen,
  consumers: viewConsumers,
  consumerForm: viewConsumerForm,
  plugins: viewPlugins,
  pluginForm: viewPluginForm,
  history: viewHistory,
  audit: viewAudit,
});
boot();
