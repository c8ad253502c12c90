// Advanced: the whole config as TOML, validated and saved as one text.

import { t } from '../lib/i18n.js';
import { h, uid } from '../lib/dom.js';
import { canEdit } from '../lib/state.js';
import { api, ApiError } from '../lib/api.js';
import { shortHash } from '../lib/format.js';
import { mount, loading, btn, pill, pageHead } from '../lib/ui.js';
import { FormErrors } from '../lib/forms.js';
import { notify } from '../lib/notice.js';
import { refresh } from '../lib/router.js';

export async function viewToml(m, ctx) {
  document.title = `${t('toml.title')} — ${t('app.name')}`;
  mount(loading());
  const config = await api('GET', '/api/config');
  if (!ctx.alive()) return;
  const editable = canEdit();
  const errors = new FormErrors('toml-errors');
  const result = h('div', { class: 'result', 'aria-live': 'polite', testid: 'toml-result' });
  const text = h('textarea', {
    id: uid('toml'), testid: 'toml-text', class: 'code', rows: '28', wrap: 'off', spellcheck: 'false', autocomplete: 'off',
    readOnly: !editable, value: config.text || '', 'aria-label': t('toml.textLabel'),
  });
  const message = h('input', { type: 'text', id: uid('msg'), testid: 'toml-message', placeholder: t('toml.messagePlaceholder'), autocomplete: 'off' });
  const validate = btn(t('toml.validate'), { testid: 'toml-validate' });
  const save = btn(t('common.save'), { class: 'btn-primary', testid: 'toml-save' });

  const showErrors = (err) => {
    if (err && err.sessionLost) return;
    if (!(err instanceof ApiError && err.status === 422 && err.errors.length)) {
      errors.fail(err);
      return;
    }
    errors.top.append(h('div', {}, t('toml.invalid')));
    const ul = h('ul', { class: 'plain error-list' });
    for (const e of err.errors) {
      const where = e.line > 0 ? t('toml.lineColumn', { line: e.line, column: e.column }) : '';
      ul.append(h('li', {},
        where ? h('button', { type: 'button', class: 'btn-link linkish', onclick: () => selectLine(text, e.line, e.column) }, where) : null,
        where ? ' ' : null, e.message));
    }
    errors.top.append(ul);
    errors.top.hidden = false;
  };

  validate.addEventListener('click', async () => {
    result.replaceChildren();
    errors.clear();
    validate.disabled = true;
    try {
      await api('POST', '/api/validate', { text: text.value });
      if (ctx.alive()) result.replaceChildren(pill('ok', t('toml.valid')));
    } catch (e) {
      if (ctx.alive()) showErrors(e);
    } finally {
      validate.disabled = false;
    }
  });

  save.addEventListener('click', async () => {
    result.replaceChildren();
    errors.clear();
    save.disabled = true;
    try {
      const answer = await api('PUT', '/api/config', { text: text.value, message: message.value.trim() });
      if (!ctx.alive()) return;
      notify(t('common.savedVersion', { what: t('toml.config'), version: answer.version }), { keep: true });
      refresh();
    } catch (e) {
      if (ctx.alive()) showErrors(e);
    } finally {
      save.disabled = false;
    }
  });

  mount(
    pageHead(t('toml.title'), editable ? t('toml.intro') : t('common.readOnlyIntro')),
    h('p', { class: 'muted small' },
      t('toml.current', { version: config.version ?? '—' }), ' ', h('code', { title: config.hash || '' }, shortHash(config.hash)),
      config.store ? ` · ${t('toml.store', { store: config.store })}` : null),
    h('div', { class: 'card form form-wide' },
      errors.top,
      h('label', { for: text.id, class: 'block-label' }, t('toml.textLabel')),
      text,
      h('p', { class: 'hint' }, t('toml.secretsHint')),
      result,
      editable ? h('div', { class: 'form-actions wrap' },
        validate,
        h('label', { for: message.id, class: 'inline-label' }, t('toml.message')), message,
        save) : null,
      h('a', { href: '#/routes', class: 'btn btn-link' }, t('common.backToRoutes'))));
}

/** Puts the cursor on a line (1-based) of a textarea and scrolls to it. */
function selectLine(textarea, line, column) {
  const lines = textarea.value.split('\n');
  let start = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) start += lines[i].length + 1;
  const lineText = lines[line - 1] || '';
  textarea.focus();
  textarea.setSelectionRange(start + Math.max(0, Math.min((column || 1) - 1, lineText.length)), start + lineText.length);
  const lineHeight = textarea.scrollHeight / Math.max(1, lines.length);
  textarea.scrollTop = Math.max(0, (line - 4) * lineHeight);
}
