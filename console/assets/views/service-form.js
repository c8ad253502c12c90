// A service's edit form: balancing, static endpoints or Nacos, connections and health checks.

import { t } from '../lib/i18n.js';
import { h, $, uid } from '../lib/dom.js';
import { list, sameJson, splitList, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { mount, pageHead } from '../lib/ui.js';
import { FormErrors, field, checkbox, saving } from '../lib/forms.js';
import { beginForm, backLink, notFound } from '../lib/crud.js';
import { notify } from '../lib/notice.js';
import { go } from '../lib/router.js';

const BALANCERS = ['round_robin', 'least_conn', 'hash'];

/** `addr weight key=value,key=value` per line → endpoints, or the first problem. */
function parseEndpoints(text) {
  const endpoints = [];
  const problems = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    const endpoint = { addr: parts.shift() };
    if (parts.length && /^\d+$/.test(parts[0])) {
      const weight = Number(parts.shift());
      if (weight !== 1) endpoint.weight = weight; // 1 is the default
    }
    else if (parts.length && !parts[0].includes('=')) {
      problems.push(t('services.badWeight', { line: i + 1, value: parts[0] }));
      return;
    }
    if (parts.length) {
      const labels = {};
      for (const pair of parts.join(',').split(',').map((x) => x.trim()).filter(Boolean)) {
        const eq = pair.indexOf('=');
        if (eq <= 0) {
          problems.push(t('services.badLabel', { line: i + 1, value: pair }));
          return;
        }
        labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
      }
      endpoint.labels = labels;
    }
    endpoints.push(endpoint);
  });
  return { endpoints, problems };
}

const endpointLine = (e) => [e.addr, e.weight ?? 1, Object.entries(e.labels || {}).map(([k, v]) => `${k}=${v}`).join(',')].filter((x) => x !== '').join(' ');

export async function viewServiceForm(name, ctx) {
  const isNew = name === null;
  beginForm('serviceForm', name);
  const services = list(await api('GET', '/api/services'));
  if (!ctx.alive()) return;
  const svc = isNew ? {} : services.find((s) => s.name === name);
  const back = backLink('services');
  if (!svc) {
    notFound('serviceForm', 'services', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors();
  const nameInput = h('input', { type: 'text', testid: 'field-name', value: svc.name || '', autocomplete: 'off', spellcheck: 'false' });
  const lbSelect = h('select', { testid: 'field-lb', value: svc.lb || 'round_robin' }, BALANCERS.map((lb) => h('option', { value: lb }, t(`lb.${lb}`))));
  const hashKey = h('input', { type: 'text', testid: 'field-hash-key', value: svc.hash_key || '', placeholder: 'header:x-user-id', autocomplete: 'off', spellcheck: 'false' });
  const hashField = field(t('serviceForm.hashKey'), hashKey, { errors, key: 'hash_key', hint: t('serviceForm.hashKeyHint') });
  const sourceName = uid('source');
  const useNacos = Boolean(svc.nacos);
  const staticRadio = h('input', { type: 'radio', name: sourceName, id: uid('r'), testid: 'field-source-static', value: 'static', checked: !useNacos });
  const nacosRadio = h('input', { type: 'radio', name: sourceName, id: uid('r'), testid: 'field-source-nacos', value: 'nacos', checked: useNacos });
  const endpointsText = h('textarea', {
    testid: 'field-endpoints', class: 'code', rows: '6', spellcheck: 'false', autocomplete: 'off',
    value: list(svc.endpoints).map(endpointLine).join('\n'), placeholder: '10.0.0.5:8080 1 stage=blue\n10.0.0.6:8080 1 stage=green',
  });
  const nacos = svc.nacos || {};
  const nacosService = h('input', { type: 'text', testid: 'field-nacos-service', value: nacos.service || '', autocomplete: 'off', spellcheck: 'false' });
  const nacosGroup = h('input', { type: 'text', testid: 'field-nacos-group', value: nacos.group || '', placeholder: 'DEFAULT_GROUP', autocomplete: 'off', spellcheck: 'false' });
  const nacosClusters = h('input', { type: 'text', testid: 'field-nacos-clusters', value: list(nacos.clusters).join(', '), autocomplete: 'off', spellcheck: 'false' });
  const staticPart = h('div', { class: 'subform' },
    field(t('serviceForm.endpoints'), endpointsText, { errors, key: 'endpoints', hint: t('serviceForm.endpointsHint') }));
  const nacosErr = errors.slot('nacos', nacosService);
  const nacosPart = h('div', { class: 'subform' },
    field(t('services.nacosService'), nacosService, { hint: t('serviceForm.nacosServiceHint') }),
    field(t('services.nacosGroup'), nacosGroup),
    field(t('services.nacosClusters'), nacosClusters, { hint: t('serviceForm.clustersHint') }),
    nacosErr);
  // Connections and health: empty number fields mean "the default" (shown as placeholder).
  const numberInput = (testid, value, placeholder, min) => h('input', {
    type: 'number', testid, min: String(min), step: '1', inputmode: 'numeric', class: 'count',
    value: value ?? '', placeholder: String(placeholder),
  });
  const retries = numberInput('field-retries', svc.retries, 2, 0);
  retries.max = '7';
  const connectTimeout = numberInput('field-connect-timeout-ms', svc.connect_timeout_ms, 1000, 1);
  const hc = svc.health_check || {};
  const hcBox = checkbox(t('serviceForm.hcEnabled'), { testid: 'field-health-check', checked: Boolean(svc.health_check) });
  const hcType = h('select', { testid: 'field-health-check-type', value: hc.type || 'http' },
    [...new Set(['http', 'tcp', hc.type].filter(Boolean))].map((x) => h('option', { value: x }, ['http', 'tcp'].includes(x) ? t(`serviceForm.hcType.${x}`) : x)));
  const hcPath = h('input', { type: 'text', testid: 'field-health-check-path', value: hc.path || '', placeholder: '/', autocomplete: 'off', spellcheck: 'false' });
  const hcInterval = numberInput('field-health-check-interval-ms', hc.interval_ms, 1000, 1);
  const hcTimeout = numberInput('field-health-check-timeout-ms', hc.timeout_ms, 500, 1);
  const hcHealthy = numberInput('field-health-check-healthy-threshold', hc.healthy_threshold, 2, 1);
  const hcUnhealthy = numberInput('field-health-check-unhealthy-threshold', hc.unhealthy_threshold, 2, 1);
  const hcPathField = field(t('serviceForm.hcPath'), hcPath, { errors, key: 'health_check.path', testKey: 'health_check-path', hint: t('serviceForm.hcPathHint') });
  const hcPart = h('div', { class: 'subform' },
    field(t('serviceForm.hcType'), hcType, { errors, key: 'health_check.type', testKey: 'health_check-type', hint: t('serviceForm.hcTypeHint') }),
    hcPathField,
    h('div', { class: 'field-grid' },
      field(t('serviceForm.hcInterval'), hcInterval, { errors, key: 'health_check.interval_ms', testKey: 'health_check-interval_ms' }),
      field(t('serviceForm.hcTimeout'), hcTimeout, { errors, key: 'health_check.timeout_ms', testKey: 'health_check-timeout_ms' }),
      field(t('serviceForm.hcHealthy'), hcHealthy, { errors, key: 'health_check.healthy_threshold', testKey: 'health_check-healthy_threshold' }),
      field(t('serviceForm.hcUnhealthy'), hcUnhealthy, { errors, key: 'health_check.unhealthy_threshold', testKey: 'health_check-unhealthy_threshold' })),
    h('p', { class: 'hint' }, t('serviceForm.hcThresholdHint')));
  const hcErr = errors.slot('health_check', $('input', hcBox));
  $('input', hcBox).setAttribute('aria-describedby', hcErr.id);
  const ps = svc.passive || {};
  const passiveFailures = numberInput('field-passive-failures', ps.failures, 3, 0);
  const passiveEject = numberInput('field-passive-eject-ms', ps.eject_ms, 10000, 1);
  const passive5xx = checkbox(t('serviceForm.passive5xx'), { testid: 'field-passive-count-5xx', checked: Boolean(ps.count_5xx) });
  const passiveErr = errors.slot('passive', passiveFailures);
  const sync = () => {
    hashField.hidden = lbSelect.value !== 'hash';
    staticPart.hidden = nacosRadio.checked;
    nacosPart.hidden = !nacosRadio.checked;
    hcPart.hidden = !$('input', hcBox).checked;
    hcPathField.hidden = hcType.value !== 'http';
  };
  lbSelect.addEventListener('change', sync);
  staticRadio.addEventListener('change', sync);
  nacosRadio.addEventListener('change', sync);
  $('input', hcBox).addEventListener('change', sync);
  hcType.addEventListener('change', sync);
  sync();
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'service-save' }, t('common.save'));
  const form = h('form', { testid: 'service-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('serviceForm.name'), nameInput, { errors, key: 'name' }),
      field(t('serviceForm.lb'), lbSelect, { errors, key: 'lb', hint: t('serviceForm.lbHint') }),
      hashField,
      h('fieldset', { class: 'field checks' },
        h('legend', {}, t('serviceForm.source')),
        h('div', { class: 'check-row' },
          h('label', { class: 'check', for: staticRadio.id }, staticRadio, h('span', {}, t('serviceForm.sourceStatic'))),
          h('label', { class: 'check', for: nacosRadio.id }, nacosRadio, h('span', {}, t('serviceForm.sourceNacos'))))),
      staticPart,
      nacosPart,
      h('h2', { class: 'form-section' }, t('serviceForm.connections')),
      h('div', { class: 'field-grid' },
        field(t('serviceForm.retries'), retries, { errors, key: 'retries', hint: t('serviceForm.retriesHint') }),
        field(t('serviceForm.connectTimeout'), connectTimeout, { errors, key: 'connect_timeout_ms', hint: t('serviceForm.connectTimeoutHint') })),
      h('fieldset', { class: 'field' },
        h('legend', {}, t('serviceForm.hc')),
        h('p', { class: 'hint hint-lead' }, t('serviceForm.hcHint')),
        hcBox,
        hcErr,
        hcPart),
      h('fieldset', { class: 'field' },
        h('legend', {}, t('serviceForm.passive')),
        h('p', { class: 'hint hint-lead' }, t('serviceForm.passiveHint')),
        h('div', { class: 'field-grid' },
          field(t('serviceForm.passiveFailures'), passiveFailures, { errors, key: 'passive.failures', testKey: 'passive-failures', hint: t('serviceForm.passiveFailuresHint') }),
          field(t('serviceForm.passiveEject'), passiveEject, { errors, key: 'passive.eject_ms', testKey: 'passive-eject_ms' })),
        passive5xx,
        passiveErr)),
    h('div', { class: 'form-actions' }, editable ? save : null, back,
      h('a', { href: '#/toml', class: 'btn btn-link' }, t('routes.advancedToml'))));

  async function submit() {
    if (!editable) return;
    errors.clear();
    const newName = nameInput.value.trim();
    if (!newName) {
      errors.show([{ field: 'name', message: t('v.required') }]);
      return;
    }
    const lb = lbSelect.value;
    const body = {
      name: newName,
      lb: lb === 'round_robin' && !svc.lb ? null : lb,
      hash_key: lb === 'hash' ? (hashKey.value.trim() || null) : null,
    };
    const problems = [];
    if (lb === 'hash' && !hashKey.value.trim()) problems.push({ field: 'hash_key', message: t('serviceForm.hashKeyRequired') });
    // A whole number from the field, undefined when empty; a problem when it is not one.
    const readNumber = (input, key, min, max = Infinity) => {
      const raw = input.value.trim();
      if (input.validity.badInput) {
        problems.push({ field: key, message: t('serviceForm.badNumber', { min }) });
        return undefined;
      }
      if (raw === '') return undefined;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < min || n > max) {
        problems.push({ field: key, message: max === Infinity ? t('serviceForm.badNumber', { min }) : t('serviceForm.badRange', { min, max }) });
        return undefined;
      }
      return n;
    };
    // Keys the form does not touch are left out (the server keeps them); a cleared key is null.
    const setKey = (key, value) => {
      const had = svc[key] !== undefined && svc[key] !== null;
      if (value === undefined) {
        if (had) body[key] = null;
      } else if (!had || !sameJson(value, svc[key])) {
        body[key] = value;
      }
    };
    const retriesValue = readNumber(retries, 'retries', 0, 7);
    const connectValue = readNumber(connectTimeout, 'connect_timeout_ms', 1);
    const check = {};
    if ($('input', hcBox).checked) {
      const type = hcType.value;
      if (type !== 'http' || hc.type !== undefined) check.type = type;
      const path = hcPath.value.trim();
      if (type === 'http' && path) {
        if (!path.startsWith('/')) problems.push({ field: 'health_check.path', message: t('serviceForm.hcPathSlash') });
        check.path = path;
      }
      const numbers = [
        ['interval_ms', hcInterval], ['timeout_ms', hcTimeout],
        ['healthy_threshold', hcHealthy], ['unhealthy_threshold', hcUnhealthy],
      ];
      for (const [key, input] of numbers) {
        const n = readNumber(input, `health_check.${key}`, 1);
        if (n !== undefined) check[key] = n;
      }
      // An empty table would be dropped from the file: keep the type so the check stays on.
      if (!Object.keys(check).length) check.type = type;
    }
    const passive = {};
    const failures = readNumber(passiveFailures, 'passive.failures', 0);
    if (failures !== undefined) passive.failures = failures;
    const eject = readNumber(passiveEject, 'passive.eject_ms', 1);
    if (eject !== undefined) passive.eject_ms = eject;
    const count5xx = $('input', passive5xx).checked;
    if (count5xx || ps.count_5xx !== undefined) passive.count_5xx = count5xx;
    if (nacosRadio.checked) {
      if (!nacosService.value.trim()) problems.push({ field: 'nacos', message: t('serviceForm.nacosRequired') });
      body.endpoints = null;
      body.nacos = { service: nacosService.value.trim() };
      if (nacosGroup.value.trim()) body.nacos.group = nacosGroup.value.trim();
      const clusters = splitList(nacosClusters.value);
      if (clusters.length) body.nacos.clusters = clusters;
    } else {
      const parsed = parseEndpoints(endpointsText.value);
      problems.push(...parsed.problems.map((message) => ({ field: 'endpoints', message })));
      body.endpoints = parsed.endpoints;
      body.nacos = null;
    }
    if (problems.length) {
      errors.show(problems);
      return;
    }
    setKey('retries', retriesValue);
    setKey('connect_timeout_ms', connectValue);
    setKey('health_check', Object.keys(check).length ? check : undefined);
    setKey('passive', Object.keys(passive).length ? passive : undefined);
    const answer = await saving(save, errors, () => api('PUT', `/api/services/${enc(isNew ? newName : name)}`, body));
    if (!answer || !ctx.alive()) return;
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/services');
  }

  mount(pageHead(isNew ? t('serviceForm.newTitle') : t('serviceForm.editTitle', { name }), editable ? t('serviceForm.intro') : t('common.readOnlyIntro')), form);
}
