// Plugins: each one's settings and the routes that use it.

import { t } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { errText } from '../lib/format.js';
import { mount, pageHead, loading, linkBtn, btn, pill, routeLinks } from '../lib/ui.js';
import { notify } from '../lib/notice.js';
import { refresh } from '../lib/router.js';

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

export async function viewPlugins(m, ctx) {
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
