// Fleet: every gateway's health, config version and live figures, refreshed every REFRESH_MS.

import { t, locale } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list } from '../lib/data.js';
import { api, REFRESH_MS } from '../lib/api.js';
import { shortHash, fmtNumber, fmtPercent } from '../lib/format.js';
import { loading, mount, pageHead, alertBox, pill, emptyRow, table } from '../lib/ui.js';

export async function viewFleet(m, ctx) {
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
