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
      const gateways = list(data && data.gateways);
      const sections = [fleetTable(gateways), wafSection(gateways), translationSection(gateways)];
      body.replaceChildren(...sections.filter(Boolean));
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

// The WAF rules that matched most, over the whole fleet: what is being attacked and what the
// firewall did about it, in words an operator can act on (the rule's family by its CRS id).
function wafSection(gateways) {
  const byKey = new Map();
  for (const g of gateways) {
    for (const r of list(g.waf_rules)) {
      const key = `${r.rule}\u0000${r.route}\u0000${r.action}`;
      const sum = byKey.get(key) || { ...r, total: 0, rps: 0 };
      sum.total += Number(r.total) || 0;
      sum.rps += Number(r.rps) || 0;
      byKey.set(key, sum);
    }
  }
  const rules = [...byKey.values()].sort((a, b) => b.total - a.total).slice(0, 10);
  const headers = [
    t('fleet.waf.col.rule'), t('fleet.waf.col.family'), t('fleet.waf.col.route'),
    t('fleet.waf.col.action'), { label: t('fleet.waf.col.total'), class: 'num' },
    { label: t('fleet.waf.col.rate'), class: 'num' },
  ];
  const rows = rules.length
    ? rules.map((r) => h('tr', { testid: `waf-rule-${r.rule}` },
      h('td', {}, h('code', {}, r.rule)),
      h('td', {}, ruleFamily(r.rule)),
      h('td', {}, r.route || '—'),
      h('td', {}, actionPill(r.action)),
      h('td', { class: 'num' }, fmtNumber(r.total, 0)),
      h('td', { class: 'num' }, fmtNumber(r.rps))))
    : [emptyRow(headers.length, t('fleet.waf.none'))];
  return h('section', { class: 'waf' },
    h('h2', {}, t('fleet.waf.title')),
    h('p', { class: 'muted' }, t('fleet.waf.intro')),
    table(headers, rows, { class: 'waf-rules' }));
}

// What the Ingress controller could not translate (or translated differently) from the
// cluster's Ingresses and Gateway API routes, as the gateways' mounted report says. Shown only
// on a fleet run by the controller; not-translated lines first, since they change traffic.
function translationSection(gateways) {
  const reports = gateways.map((g) => g.translation).filter((r) => r && typeof r === 'object');
  if (!reports.length) return null;
  const lines = new Map();
  for (const r of reports) {
    for (const [kind, items] of [['unsupported', r.unsupported], ['differs', r.differs]]) {
      for (const l of list(items)) {
        const key = `${kind}\u0000${l.object}\u0000${l.what}\u0000${l.note}`;
        if (!lines.has(key)) lines.set(key, { kind, ...l });
      }
    }
  }
  const sorted = [...lines.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'unsupported' ? -1 : 1)
    || String(a.object).localeCompare(String(b.object)) || String(a.what).localeCompare(String(b.what)));
  const first = reports[0];
  const unsupported = sorted.filter((l) => l.kind === 'unsupported').length;
  const headers = [t('fleet.translation.col.result'), t('fleet.translation.col.object'),
    t('fleet.translation.col.what'), t('fleet.translation.col.note')];
  const rows = sorted.length
    ? sorted.map((l, i) => h('tr', { testid: `translation-row-${i}` },
      h('td', {}, l.kind === 'unsupported'
        ? pill('bad', t('fleet.translation.unsupported')) : pill('warn', t('fleet.translation.differs'))),
      h('td', {}, h('code', {}, l.object || '—')),
      h('td', {}, h('code', {}, l.what || '—')),
      h('td', {}, l.note || '')))
    : [emptyRow(headers.length, t('fleet.translation.none'))];
  return h('section', { class: 'translation', testid: 'translation' },
    h('h2', {}, t('fleet.translation.title')),
    h('p', { class: 'muted' }, t('fleet.translation.intro', {
      ingresses: first.ingresses ?? 0, routes: first.gateway_api_routes ?? 0, unsupported,
    })),
    table(headers, rows, { class: 'translation-lines' }));
}

// CRS rule ids are grouped by family in blocks of a thousand (942xxx: SQL injection); the
// lite engine names its checks.
const FAMILIES = {
  911: 'method', 913: 'scanner', 920: 'protocol', 921: 'protocolAttack', 930: 'lfi', 931: 'rfi',
  932: 'rce', 933: 'php', 934: 'nodejs', 941: 'xss', 942: 'sqli', 943: 'session', 944: 'java',
  949: 'score', 950: 'leak', 951: 'leak', 952: 'leak', 953: 'leak', 954: 'leak', 959: 'score',
  980: 'score', sqli: 'sqli', xss: 'xss', traversal: 'lfi', cmdi: 'rce', scanner: 'scanner',
  protocol: 'protocol',
};

function ruleFamily(rule) {
  const family = FAMILIES[/^\d{6}$/.test(rule) ? Math.floor(Number(rule) / 1000) : rule];
  return family ? t(`fleet.waf.family.${family}`) : h('span', { class: 'muted' }, t('fleet.waf.family.own'));
}

function actionPill(action) {
  if (action === 'block') return pill('bad', t('fleet.waf.action.block'));
  if (action === 'detect') return pill('warn', t('fleet.waf.action.detect'));
  return pill('ok', t('fleet.waf.action.pass'));
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
