// The header: navigation, who is signed in, the read-only badge and the language toggle.

import { t, getLang } from './i18n.js';
import { $ } from './dom.js';
import { state } from './state.js';

export function updateHeader(active) {
  const me = state.me;
  $('#nav').hidden = !me;
  $('#whoami').hidden = !me;
  $('#logout').hidden = !me;
  if (me) {
    $('#user-name').textContent = me.user;
    $('#user-role').textContent = t(`role.${me.role}`);
    $('#readonly-badge').hidden = me.role === 'operator';
  } else {
    $('#readonly-badge').hidden = true;
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (active && a.dataset.nav === active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const toggle = $('#lang-toggle');
  toggle.textContent = t('lang.switch');
  toggle.lang = getLang() === 'zh' ? 'en' : 'zh-CN';
}
