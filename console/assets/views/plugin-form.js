// A plugin's edit form: type and settings as JSON (a new plugin starts from an example).

import { t } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api, ApiError } from '../lib/api.js';
import { routeLinks, mount, pageHead } from '../lib/ui.js';
import { FormErrors, field, saving } from '../lib/forms.js';
import { beginForm, backLink, notFound } from '../lib/crud.js';
import { notify } from '../lib/notice.js';
import { go } from '../lib/router.js';

const PLUGIN_TYPES = ['key-rate-limit', 'cc-protection', 'key-auth', 'basic-auth', 'jwt-auth', 'hmac-auth',
  'ip-restriction', 'cors', 'request-size', 'request-block', 'waf'];

/** Starting settings for a new plugin of each type (README "Plugins"); the operator edits them. */
const PLUGIN_TEMPLATES = {
  'key-rate-limit': { key: 'tenant', limits: [{ per: 'minute', count: 1000 }] },
  'cc-protection': { key: 'client_ip', rate: { per: 'second', count: 50 }, ban_seconds: 60 },
  'key-auth': { header: 'x-api-key' },
  'basic-auth': { realm: 'api' },
  'jwt-auth': { algorithms: ['RS256'], jwks_url: 'https://id.example.com/.well-known/jwks.json' },
  'hmac-auth': { clock_skew_seconds: 300 },
  'ip-restriction': { allow: ['10.0.0.0/8'] },
  cors: { origins: ['https://app.example.com'], methods: ['GET', 'POST'] },
  'request-size': { max_bytes: 1048576 },
  'request-block': { paths: ['^/internal/'] },
  waf: { mode: 'detect' },
};

const pluginTypeLabel = (type) => {
  const key = `pluginType.${type}`;
  const text = t(key);
  return text === key ? type : `${type} — ${text}`;
};

/** Where JSON.parse stopped ({line, column, offset}), from the engine's message; null if unknown. */
function jsonErrorAt(text, err) {
  const message = String((err && err.message) || '');
  const lc = /line (\d+) column (\d+)/.exec(message);
  const at = /position (\d+)/.exec(message);
  let offset;
  if (at) offset = Math.min(Number(at[1]), text.length);
  else if (lc) {
    const lines = text.split('\n').slice(0, Number(lc[1]) - 1);
    offset = Math.min(lines.reduce((n, l) => n + l.length + 1, 0) + Number(lc[2]) - 1, text.length);
  } else return null;
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n'), offset };
}

export async function viewPluginForm(name, ctx) {
  const isNew = name === null;
  beginForm('pluginForm', name);
  const plugins = list(await api('GET', '/api/plugins'));
  if (!ctx.alive()) return;
  const plugin = isNew ? { config: {} } : plugins.find((p) => p.name === name);
  const back = backLink('plugins');
  if (!plugin) {
    notFound('pluginForm', 'plugins', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors('error-plugin');
  const nameInput = h('input', {
    type: 'text', testid: 'plugin-field-name', value: isNew ? '' : name, readOnly: !isNew,
    autocomplete: 'off', spellcheck: 'false', placeholder: isNew ? 'waf' : null,
  });
  const types = [...PLUGIN_TYPES];
  if (plugin.type && !types.includes(plugin.type)) types.push(plugin.type);
  const typeSelect = h('select', { testid: 'plugin-field-type', value: plugin.type || '' },
    isNew ? h('option', { value: '' }, t('pluginForm.chooseType')) : null,
    types.map((x) => h('option', { value: x }, pluginTypeLabel(x))));
  const configText = h('textarea', {
    testid: 'plugin-field-config', class: 'code', rows: '14', wrap: 'off', spellcheck: 'false', autocomplete: 'off',
    value: isNew ? '{}' : JSON.stringify(plugin.config || {}, null, 2),
  });
  // A new plugin starts from an example of its type, until the operator edits the text.
  let template = configText.value;
  typeSelect.addEventListener('change', () => {
    if (!isNew || configText.value !== template) return;
    template = JSON.stringify(PLUGIN_TEMPLATES[typeSelect.value] || {}, null, 2);
    configText.value = template;
  });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'plugin-save' }, t('common.save'));
  const usedBy = routeLinks(plugin.routes);
  const form = h('form', { testid: 'plugin-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('pluginForm.name'), nameInput, {
        errors, key: 'name', testKey: 'plugin-name', hint: isNew ? t('pluginForm.nameHint') : t('pluginForm.nameFixed'),
      }),
      field(t('pluginForm.type'), typeSelect, { errors, key: 'type', testKey: 'plugin-type', hint: t('pluginForm.typeHint') }),
      field(t('pluginForm.config'), configText, { errors, key: 'config', testKey: 'plugin-config', hint: t('pluginForm.configHint') }),
      usedBy ? h('p', { class: 'hint' }, t('pluginForm.usedBy'), ' ', usedBy) : null),
    h('div', { class: 'form-actions' }, editable ? save : null, back,
      h('a', { href: '#/toml', class: 'btn btn-link' }, t('routes.advancedToml'))));

  // A refused save: the positioned errors as a list at the top (their lines are those of the
  // TOML file, not of the JSON text, so they are not put under a field).
  const baseFail = errors.fail.bind(errors);
  errors.fail = (err) => {
    if (!(err instanceof ApiError && err.status === 422 && err.errors.length)) {
      baseFail(err);
      return;
    }
    errors.top.append(h('div', {}, t('pluginForm.invalid')));
    errors.top.append(h('ul', { class: 'plain error-list' }, err.errors.map((e) => h('li', {},
      e.line > 0 ? h('code', {}, t('toml.lineColumn', { line: e.line, column: e.column })) : null,
      e.line > 0 ? ' ' : null,
      e.field && !['name', 'type'].includes(e.field) ? `${e.field}: ` : '',
      e.message))));
    if (err.errors.some((e) => e.line > 0)) errors.top.append(h('p', { class: 'hint' }, t('pluginForm.linesHint')));
    errors.top.hidden = false;
    if (err.errors.some((e) => e.field && e.field !== 'name' && e.field !== 'type')) configText.setAttribute('aria-invalid', 'true');
    errors.top.scrollIntoView({ block: 'nearest' });
  };

  async function submit() {
    if (!editable) return;
    errors.clear();
    const newName = isNew ? nameInput.value.trim() : name;
    const type = typeSelect.value;
    const problems = [];
    if (!newName) problems.push({ field: 'name', message: t('v.required') });
    else if (isNew && plugins.some((p) => p.name === newName)) problems.push({ field: 'name', message: t('pluginForm.nameTaken', { name: newName }) });
    if (!type) problems.push({ field: 'type', message: t('pluginForm.typeRequired') });
    let config;
    let badAt = null;
    const raw = configText.value;
    try {
      config = raw.trim() ? JSON.parse(raw) : {};
    } catch (e) {
      badAt = jsonErrorAt(raw, e);
      problems.push({
        field: 'config',
        message: badAt
          ? t('pluginForm.badJsonAt', { line: badAt.line, column: badAt.column, error: e.message })
          : t('pluginForm.badJson', { error: e.message }),
      });
    }
    if (config !== undefined) {
      if (config === null || typeof config !== 'object' || Array.isArray(config)) {
        problems.push({ field: 'config', message: t('pluginForm.notObject') });
      } else if (Object.prototype.hasOwnProperty.call(config, 'type')) {
        problems.push({ field: 'config', message: t('pluginForm.typeInConfig') });
      }
    }
    if (problems.length) {
      errors.show(problems);
      const first = { name: nameInput, type: typeSelect, config: configText }[problems[0].field];
      if (first) first.focus();
      if (first === configText && badAt) configText.setSelectionRange(badAt.offset, badAt.offset);
      return;
    }
    const answer = await saving(save, errors, () => api('PUT', `/api/plugins/${enc(newName)}`, { type, config }));
    if (!answer || !ctx.alive()) return;
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/plugins');
  }

  mount(pageHead(isNew ? t('pluginForm.newTitle') : t('pluginForm.editTitle', { name }), editable ? t('pluginForm.intro') : t('common.readOnlyIntro')), form);
}
