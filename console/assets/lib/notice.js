// The notice under the header: success messages, kept through one render on request.

import { $ } from './dom.js';
import { state } from './state.js';

export function notify(message, { keep = false } = {}) {
  const el = $('#notice');
  $('#notice-text').textContent = message;
  el.hidden = false;
  state.keepNotice = keep;
  el.scrollIntoView({ block: 'nearest' });
}

export function hideNotice() {
  $('#notice').hidden = true;
  $('#notice-text').textContent = '';
}
