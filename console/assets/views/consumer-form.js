// A consumer's edit form: name, tenant and API keys (saved keys are only shown shortened; keys
// typed in replace them).

import { t } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list, enc } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { btn, mount, pageHead } from '../lib/ui.js';
import { FormErrors, field, saving } from '../lib/forms.js';
import { beginForm, backLink, notFound } from '../lib/crud.js';
import { notify } from '../lib/notice.js';
import { go } from '../lib/router.js';

export async function viewConsumerForm(name, ctx) {
  const isNew = name === null;
  beginForm('consumerForm', name);
  const consumers = list(await api('GET', '/api/consumers'));
  if (!ctx.alive()) return;
  const consumer = isNew ? {} : consumers.find((c) => c.name === name);
  const back = backLink('consumers');
  if (!consumer) {
    notFound('consumerForm', 'consumers', name);
    return;
  }
  const editable = canEdit();
  const errors = new FormErrors();
  const tenants = [...new Set(consumers.map((c) => c.tenant).filter(Boolean))].sort();
  const nameInput = h('input', { type: 'text', testid: 'field-name', value: consumer.name || '', autocomplete: 'off', spellcheck: 'false' });
  const tenantInput = h('input', { type: 'text', testid: 'field-tenant', value: consumer.tenant || '', list: 'tenant-options', autocomplete: 'off', spellcheck: 'false' });
  const keyInputs = [];
  const keysBox = h('div', { class: 'key-list' });
  const keysErr = errors.slot('keys');
  const addKey = () => {
    const input = h('input', {
      type: 'password', testid: `field-key-${keyInputs.length}`, autocomplete: 'new-password', spellcheck: 'false',
      'aria-label': t('consumerForm.newKeyN', { n: keyInputs.length + 1 }),
    });
    keyInputs.push(input);
    keysBox.append(input);
    return input;
  };
  addKey();
  const saved = list(consumer.keys);
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'consumer-save' }, t('common.save'));
  const form = h('form', { testid: 'consumer-form', class: 'card form', novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submit(); } },
    errors.top,
    h('fieldset', { disabled: !editable, class: 'plain-fieldset' },
      field(t('consumerForm.name'), nameInput, { errors, key: 'name' }),
      field(t('consumerForm.tenant'), tenantInput, { errors, key: 'tenant', hint: t('consumerForm.tenantHint') }),
      h('datalist', { id: 'tenant-options' }, tenants.map((x) => h('option', { value: x }))),
      h('fieldset', { class: 'field' },
        h('legend', {}, t('consumerForm.keys')),
        h('p', { class: 'hint' }, saved.length ? t('consumerForm.savedKeys', { count: saved.length }) : t('consumerForm.noSavedKeys')),
        saved.length ? h('ul', { class: 'plain' }, saved.map((k) => h('li', {}, h('code', {}, k)))) : null,
        keysBox,
        editable ? btn(t('consumerForm.addKey'), { class: 'btn-small', testid: 'field-key-add', onclick: () => addKey().focus() }) : null,
        h('p', { class: 'hint' }, t('consumerForm.keysHint')),
        keysErr),
      (consumer.basic || consumer.hmac) ? h('p', { class: 'hint' }, t('consumerForm.otherCredentials')) : null),
    h('div', { class: 'form-actions' }, editable ? save : null, back));

  async function submit() {
    if (!editable) return;
    errors.clear();
    const newName = nameInput.value.trim();
    if (!newName) {
      errors.show([{ field: 'name', message: t('v.required') }]);
      return;
    }
    const keys = keyInputs.map((i) => i.value.trim()).filter(Boolean);
    const body = { name: newName, tenant: tenantInput.value.trim() || null };
    if (keys.length) body.keys = keys;
    if (keys.length && saved.length && !window.confirm(t('consumerForm.confirmReplace', { count: saved.length }))) return;
    const answer = await saving(save, errors, () => api('PUT', `/api/consumers/${enc(isNew ? newName : name)}`, body));
    if (!answer || !ctx.alive()) return;
    for (const i of keyInputs) i.value = '';
    notify(t('common.savedVersion', { what: newName, version: answer.version }), { keep: true });
    go('#/consumers');
  }

  mount(pageHead(isNew ? t('consumerForm.newTitle') : t('consumerForm.editTitle', { name }), editable ? t('consumerForm.intro') : t('common.readOnlyIntro')), form);
}
