// Audit log: who did what, with a search that is kept while the console is open.

import { t } from '../lib/i18n.js';
import { h, uid } from '../lib/dom.js';
import { list } from '../lib/data.js';
import { api } from '../lib/api.js';
import { fmtTime } from '../lib/format.js';
import { mount, pageHead, loading, pill, emptyRow } from '../lib/ui.js';

let auditQuery = '';

function auditAction(action) {
  const key = `audit.action.${action}`;
  const text = t(key);
  return text === key ? action : text;
}

export async function viewAudit(m, ctx) {
  document.title = `${t('nav.audit')} — ${t('app.name')}`;
  mount(pageHead(t('audit.title'), t('audit.intro')), loading());
  const entries = list(await api('GET', '/api/audit'));
  if (!ctx.alive()) return;
  const tbody = h('tbody');
  const search = h('input', {
    type: 'search', id: uid('search'), testid: 'audit-search', value: auditQuery, autocomplete: 'off',
    placeholder: t('audit.searchPlaceholder'), oninput: () => { auditQuery = search.value; fill(); },
  });
  const fill = () => {
    const q = auditQuery.trim().toLowerCase();
    const shown = entries.filter((e) => !q || [e.user, e.action, auditAction(e.action), e.detail].join(' ').toLowerCase().includes(q));
    tbody.replaceChildren(...(shown.length ? shown.map((e) => h('tr', { class: e.ok ? null : 'refused' },
      h('td', { class: 'nowrap' }, fmtTime(e.at)),
      h('td', {}, e.user || '—'),
      h('td', {}, auditAction(e.action)),
      h('td', { class: 'detail' }, e.detail || ''),
      h('td', {}, e.ok ? pill('ok', t('audit.ok')) : pill('bad', t('audit.refused')))))
      : [emptyRow(5, t('audit.none'))]));
  };
  fill();
  mount(
    pageHead(t('audit.title'), t('audit.intro')),
    h('div', { class: 'toolbar' }, h('label', { for: search.id }, t('audit.search')), search),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'audit' },
        h('thead', {}, h('tr', {}, [t('audit.col.time'), t('audit.col.user'), t('audit.col.action'), t('audit.col.detail'), t('audit.col.result')].map((x) => h('th', { scope: 'col' }, x)))),
        tbody)));
}
