// Consumers & limits: the consumers table, then one limits card per key-rate-limit plugin.

import { t } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { mount, pageHead, loading, table, pill, linkBtn, btn, emptyRow } from '../lib/ui.js';
import { deleteItem } from '../lib/crud.js';
import { limitsCard } from './limits.js';

export async function viewConsumers(m, ctx) {
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
