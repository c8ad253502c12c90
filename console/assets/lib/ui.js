// Small UI pieces every view uses: pills, buttons, tables, the page head, and mount() which
// puts a view's nodes into <main>.

import { t } from './i18n.js';
import { h, $, add } from './dom.js';
import { list, enc } from './data.js';
import { state } from './state.js';
import { errText } from './format.js';

export function pill(kind, text) {
  return h('span', { class: `pill pill-${kind}` }, text);
}

export function labelChips(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return entries.map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`));
}

export function loading() {
  return h('p', { class: 'muted loading', role: 'status' }, t('common.loading'));
}

export function alertBox(err) {
  return h('div', { class: 'alert alert-bad', role: 'alert', testid: 'page-error' }, errText(err));
}

export function pageHead(title, intro, ...actions) {
  return h('div', { class: 'page-head' },
    h('div', { class: 'page-title' },
      h('h1', { tabindex: '-1' }, title),
      intro ? h('p', { class: 'muted intro' }, intro) : null),
    actions.flat().filter(Boolean).length ? h('div', { class: 'actions' }, actions) : null);
}

export function btn(label, props = {}) {
  return h('button', { type: 'button', ...props, class: ['btn', props.class] }, label);
}

export function linkBtn(href, label, props = {}) {
  return h('a', { href, ...props, class: ['btn', props.class] }, label);
}

export function table(headers, rows, props = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', props,
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', class: x.class }, x.label ?? x)))),
      h('tbody', {}, rows)));
}

export function emptyRow(cols, text) {
  return h('tr', {}, h('td', { colspan: String(cols), class: 'muted empty' }, text));
}

/** "api, chat" with each name a link to the route's form; null for none. */
export function routeLinks(routes) {
  const names = list(routes);
  if (!names.length) return null;
  return names.map((r, i) => [i ? ', ' : '', h('a', { href: `#/routes/edit/${enc(r)}` }, r)]);
}

export function mount(...nodes) {
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
