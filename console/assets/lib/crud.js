// What the list and edit pages of routes, services, consumers and plugins share: the start of
// an edit form, its back link and "not found" state, and deleting an item from a list.

import { t } from './i18n.js';
import { h, $ } from './dom.js';
import { enc } from './data.js';
import { api } from './api.js';
import { loading, mount, pageHead, alertBox } from './ui.js';
import { notify } from './notice.js';
import { refresh } from './router.js';

/// The start of every edit form: its title and a loading state.
export function beginForm(form, name) {
  document.title = `${name === null ? t(`${form}.newTitle`) : t(`${form}.editTitle`, { name })} — ${t('app.name')}`;
  mount(loading());
}

export const backLink = (kind) => h('a', { href: `#/${kind}`, class: 'btn btn-link' }, t('common.backToList'));

/// An edit form for an item that does not exist (any more).
export function notFound(form, kind, name) {
  mount(pageHead(t(`${form}.editTitle`, { name })), h('p', { class: 'alert alert-bad', role: 'alert' }, t(`${kind}.notFound`, { name })), backLink(kind));
}

/// Deletes one item after a confirm; `kind` is the API collection (routes, services,
/// consumers) and `confirmKey`/`doneKey` the messages.
export async function deleteItem(kind, name, button, ctx, confirmKey, doneKey) {
  if (!window.confirm(t(confirmKey, { name }))) return;
  button.disabled = true;
  try {
    await api('DELETE', `/api/${kind}/${enc(name)}`);
    if (!ctx.alive()) return;
    notify(t(doneKey, { name }), { keep: true });
    refresh();
  } catch (e) {
    button.disabled = false;
    if (!e.sessionLost && ctx.alive()) $('#app').prepend(alertBox(e));
  }
}
