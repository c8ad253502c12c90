// The sign-in form (static in index.html), logging out, and what happens when a session is lost.

import { t } from '../lib/i18n.js';
import { $ } from '../lib/dom.js';
import { state } from '../lib/state.js';
import { api } from '../lib/api.js';
import { errText } from '../lib/format.js';
import { updateHeader } from '../lib/header.js';
import { go } from '../lib/router.js';

function showLoginError(message) {
  const el = $('#login-error');
  el.textContent = message;
  el.hidden = !message;
}

export function viewLogin() {
  document.title = `${t('login.title')} — ${t('app.name')}`;
  $('#login-password').value = '';
  $('#login-user').focus();
}

export async function onLoginSubmit(ev) {
  ev.preventDefault();
  const user = $('#login-user').value.trim();
  const password = $('#login-password').value;
  showLoginError('');
  if (!user || !password) {
    showLoginError(t('login.missing'));
    return;
  }
  const submit = $('#login-submit');
  submit.disabled = true;
  try {
    const me = await api('POST', '/api/login', { user, password });
    state.me = me;
    $('#login-password').value = '';
    go('#/fleet');
  } catch (e) {
    let message;
    if (e.status === 401) message = t('login.wrong', { error: e.message });
    else if (e.status === 429) message = t('login.tooMany', { seconds: e.retryAfter || '300', error: e.message });
    else message = errText(e);
    showLoginError(message);
    $('#login-password').select();
  } finally {
    submit.disabled = false;
  }
}

export async function onLogout() {
  try {
    await api('POST', '/api/logout');
  } catch {
    // The session is gone either way.
  }
  state.me = null;
  showLoginError('');
  go('#/login');
}

export function sessionLost() {
  const had = Boolean(state.me);
  state.me = null;
  updateHeader();
  if (location.hash !== '#/login') go('#/login');
  if (had) showLoginError(t('login.expired'));
}
