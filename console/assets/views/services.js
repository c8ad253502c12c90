// Services: their endpoints (or Nacos binding) and the live instances each gateway sees.

import { t } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { pill, mount, pageHead, loading, table, linkBtn, btn, labelChips, emptyRow } from '../lib/ui.js';
import { deleteItem } from '../lib/crud.js';

const STATE_PILLS = { usable: 'ok', weight_zero: 'neutral', unhealthy: 'bad', ejected: 'warn' };

function instanceState(s) {
  const kind = STATE_PILLS[s] || 'neutral';
  const key = `state.${s}`;
  const label = t(key);
  return pill(kind, label === key ? String(s ?? '—') : label);
}

export async function viewServices(m, ctx) {
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
