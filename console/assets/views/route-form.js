// A route's edit form (new or existing).

import { t } from '../lib/i18n.js';
import { h, $ } from '../lib/dom.js';
import { list, splitList, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { splitSummary } from '../lib/format.js';
import { mount, pageHead } from '../lib/ui.js';
import { FormErrors, field, checkbox, checkGroup, saving } from '../lib/forms.js';
import { beginForm, backLink, notFound } from '../lib/crud.js';
import { notify } from '../lib/notice.js';
import { go } from '../lib/router.js';
import { routeTarget } from './routes.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

export async function viewRouteForm(name, ctx) {
  const isNew = name === null;
  beginForm('routeForm', name);
  const [routes, services, plugins] = await Promise.all([
    api('GET', '/api/routes'), api('GET', '/api/services'), api('GET', '/api/plugins'),
  ]);
  if (!ctx.alive()) return;
  const route = isNew ? {} : list(routes).find((r) => r.name === name);
  const back = backLink('routes');
  if (!route) {
    notFound('routeForm', 'routes', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors();

  const nameInput = h('input', { type: 'text', testid: 'field-name', value: route.name || '', required: true, autocomplete: 'off', spellcheck: 'false' });
  const hostsInput = h('input', { type: 'text', testid: 'field-hosts', value: list(route.hosts).join(', '), placeholder: 'api.example.com, *.example.org', autocomplete: 'off', spellcheck: 'false' });
  const pathInput = h('input', { type: 'text', testid: 'field-path', value: route.path ?? '', placeholder: '/', autocomplete: 'off', spellcheck: 'false' });
  const methodBoxes = METHODS.map((method) => checkbox(method, {
    testid: `field-methods-${method}`, value: method, checked: list(route.methods).map((x) => String(x).toUpperCase()).includes(method),
  }));
  const serviceNames = list(services).map((s) => s.name);
  if (route.service && !serviceNames.includes(route.service)) serviceNames.push(route.service);
  const serviceSelect = h('select', { testid: 'field-service', value: route.service || '' },
    h('option', { value: '' }, t('routeForm.noService')),
    serviceNames.map((s) => h('option', { value: s }, s)));
  const stripBox = checkbox(t('routeForm.stripPrefix'), { testid: 'field-strip-prefix', checked: Boolean(route.strip_prefix) });
  const pluginNames = list(plugins).map((p) => p.name);
  for (const p of list(route.plugins)) if (!pluginNames.includes(p)) pluginNames.push(p);
  const pluginBoxes = pluginNames.map((p) => {
    const info = list(plugins).find((x) => x.name === p);
    return checkbox(info && info.type ? `${p} (${info.type})` : p, { testid: `field-plugin-${p}`, value: p, checked: list(route.plugins).includes(p) });
  });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'route-save' }, t('common.save'));

  const answersDirectly = !route.service && (route.respond || route.redirect);
  const form = h('form', { testid: 'route-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('routeForm.name'), nameInput, { errors, key: 'name', hint: t('routeForm.nameHint') }),
      field(t('routeForm.hosts'), hostsInput, { errors, key: 'hosts', hint: t('routeForm.hostsHint') }),
      field(t('routeForm.path'), pathInput, { errors, key: 'path', hint: t('routeForm.pathHint') }),
      checkGroup(t('routeForm.methods'), methodBoxes, { errors, key: 'methods', hint: t('routeForm.methodsHint') }),
      field(t('routeForm.service'), serviceSelect, {
        errors, key: 'service',
        hint: answersDirectly ? t('routeForm.answersDirectly', { what: routeTarget(route) }) : t('routeForm.serviceHint'),
      }),
      h('div', { class: 'field' }, stripBox, h('p', { class: 'hint' }, t('routeForm.stripPrefixHint')), errors.slot('strip_prefix')),
      checkGroup(t('routeForm.plugins'), pluginBoxes.length ? pluginBoxes : h('span', { class: 'muted' }, t('routeForm.noPlugins')),
        { errors, key: 'plugins', hint: t('routeForm.pluginsHint') }),
      route.split && list(route.split).length
        ? h('p', { class: 'hint' }, t('routeForm.hasSplit', { split: splitSummary(route.split) }), ' ', h('a', { href: '#/bluegreen' }, t('nav.bluegreen')))
        : null),
    h('div', { class: 'form-actions' },
      editable ? save : null,
      back,
      h('a', { href: '#/toml', class: 'btn btn-link', testid: 'toml-link' }, t('routes.advancedToml'))));

  async function submit() {
    if (!editable) return;
    const newName = nameInput.value.trim();
    if (!newName) {
      errors.clear();
      errors.show([{ field: 'name', message: t('v.required') }]);
      nameInput.focus();
      return;
    }
    const checked = (boxes) => boxes.map((l) => $('input', l)).filter((i) => i.checked).map((i) => i.value);
    const strip = $('input', stripBox).checked;
    const body = {
      name: newName,
      hosts: splitList(hostsInput.value),
      path: pathInput.value.trim() || null,
      methods: checked(methodBoxes),
      service: serviceSelect.value || null,
      // Unticked: leave the key out of the file (false is the default) unless it was written.
      strip_prefix: strip ? true : (route.strip_prefix === undefined ? null : false),
      plugins: checked(pluginBoxes),
    };
    const answer = await saving(save, errors, () => api('PUT', `/api/routes/${enc(isNew ? newName : name)}`, body));
    if (!answer || !ctx.alive()) return;
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/routes');
  }

  mount(pageHead(isNew ? t('routeForm.newTitle') : t('routeForm.editTitle', { name }), editable ? t('routeForm.intro') : t('common.readOnlyIntro')), form);
}
