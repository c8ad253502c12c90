// Routes: the list, with a search that is kept while the console is open.

import { t } from '../lib/i18n.js';
import { h, uid } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { splitSummary } from '../lib/format.js';
import { mount, pageHead, loading, emptyRow, linkBtn, btn } from '../lib/ui.js';
import { deleteItem } from '../lib/crud.js';

let routeQuery = '';

export function routeTarget(r) {
  if (r.service) return r.service;
  if (r.respond) return t('routes.responds', { status: r.respond.status ?? 200 });
  if (r.redirect) return t('routes.redirects', { to: r.redirect.to ?? '' });
  return '—';
}

function routeMatches(r, query) {
  if (!query) return true;
  const hay = [r.name, r.path, r.service, ...list(r.hosts)].filter(Boolean).join(' ').toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((word) => hay.includes(word));
}

export async function viewRoutes(m, ctx) {
  document.title = `${t('nav.routes')} — ${t('app.name')}`;
  mount(pageHead(t('routes.title'), t('routes.intro')), loading());
  const routes = list(await api('GET', '/api/routes'));
  if (!ctx.alive()) return;
  const editable = canEdit();
  const tbody = h('tbody');
  const count = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const search = h('input', {
    type: 'search', id: uid('search'), testid: 'route-search', value: routeQuery,
    placeholder: t('routes.searchPlaceholder'), autocomplete: 'off',
    oninput: () => { routeQuery = search.value; fill(); },
  });
  const headers = [t('routes.col.name'), t('routes.col.hosts'), t('routes.col.path'), t('routes.col.methods'),
    t('routes.col.target'), t('routes.col.plugins'), t('routes.col.split'), { label: t('common.actions'), class: 'actions-col' }];

  const fill = () => {
    const shown = routes.filter((r) => routeMatches(r, routeQuery.trim()));
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
