// Blue / green: one card per route to move traffic between two label subsets, with the live
// shares the gateways measure.

import { t } from '../lib/i18n.js';
import { h, uid } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api, REFRESH_MS } from '../lib/api.js';
import { fmtNumber, splitSummary } from '../lib/format.js';
import { mount, pageHead, loading, btn, pill } from '../lib/ui.js';
import { FormErrors, saving } from '../lib/forms.js';
import { notify } from '../lib/notice.js';
import { refresh } from '../lib/router.js';

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

export async function viewBlueGreen(m, ctx) {
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
