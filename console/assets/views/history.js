// History: every saved version, a version's diff and full text, and restoring one.

import { t } from '../lib/i18n.js';
import { h } from '../lib/dom.js';
import { list } from '../lib/data.js';
import { canEdit } from '../lib/state.js';
import { api } from '../lib/api.js';
import { fmtTime } from '../lib/format.js';
import { mount, pageHead, loading, pill, table, emptyRow, btn, alertBox } from '../lib/ui.js';
import { notify } from '../lib/notice.js';
import { go } from '../lib/router.js';

function diffView(diff) {
  const pre = h('pre', { class: 'diff', testid: 'history-diff' });
  const lines = String(diff || '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) return h('p', { class: 'muted' }, t('history.noDiff'));
  for (const line of lines) {
    let kind = '';
    if (line.startsWith('+++') || line.startsWith('---')) kind = 'diff-meta';
    else if (line.startsWith('@@')) kind = 'diff-hunk';
    else if (line.startsWith('+')) kind = 'diff-add';
    else if (line.startsWith('-')) kind = 'diff-del';
    pre.append(h('span', { class: ['diff-line', kind] }, `${line}\n`));
  }
  return pre;
}

export async function viewHistory(selected, ctx) {
  document.title = `${t('nav.history')} — ${t('app.name')}`;
  mount(pageHead(t('history.title'), t('history.intro')), loading());
  const [versions, detail] = await Promise.all([
    api('GET', '/api/history'),
    selected !== null ? api('GET', `/api/history/${selected}`) : Promise.resolve(null),
  ]);
  if (!ctx.alive()) return;
  const items = list(versions);
  const latest = items.length ? items[0].version : null;
  const open = (v) => go(`#/history/${v}`);
  const rows = items.map((v) => h('tr', {
    testid: `history-row-${v.version}`, class: ['clickable', v.version === selected && 'selected'],
    tabindex: '0', 'aria-current': v.version === selected ? 'true' : null,
    onclick: () => open(v.version),
    onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(v.version); } },
  },
  h('td', { class: 'num nowrap' }, h('a', { href: `#/history/${v.version}` }, String(v.version)), v.version === latest ? [' ', pill('ok', t('history.current'))] : null),
  h('td', { class: 'nowrap' }, fmtTime(v.at)),
  h('td', {}, v.author || '—'),
  h('td', {}, v.message || ''),
  h('td', { class: 'num changes' }, h('span', { class: 'text-add' }, `+${v.added ?? 0}`), ' ', h('span', { class: 'text-del' }, `−${v.removed ?? 0}`))));
  const detailView = detail ? historyDetail(detail, latest, ctx) : null;
  mount(
    pageHead(t('history.title'), t('history.intro')),
    detailView,
    table([{ label: t('history.col.version'), class: 'num' }, t('history.col.time'), t('history.col.author'), t('history.col.message'), { label: t('history.col.changes'), class: 'num' }],
      rows.length ? rows : [emptyRow(5, t('history.none'))], { class: 'history' }));
  if (detailView) detailView.scrollIntoView({ block: 'start' });
}

function historyDetail(d, latest, ctx) {
  const v = d.version;
  const restore = canEdit() && v !== latest
    ? btn(t('history.restore'), { class: 'btn-primary', testid: `history-restore-${v}`, onclick: () => restoreVersion(v, restore, ctx) })
    : null;
  return h('section', { class: 'card', testid: `history-detail-${v}`, 'aria-labelledby': 'history-detail-title' },
    h('div', { class: 'card-head' },
      h('h2', { id: 'history-detail-title' }, t('history.versionN', { version: v })),
      v === latest ? pill('ok', t('history.current')) : null,
      h('div', { class: 'row-actions push' }, restore, h('a', { href: '#/history', class: 'btn btn-link' }, t('common.close')))),
    h('p', { class: 'muted' }, t('history.by', { author: d.author || '—', time: fmtTime(d.at) }), d.message ? ` — ${d.message}` : ''),
    h('h3', {}, t('history.diff')),
    diffView(d.diff),
    h('details', {},
      h('summary', {}, t('history.fullText')),
      h('pre', { class: 'code-block', testid: 'history-text' }, d.text || '')));
}

async function restoreVersion(version, button, ctx) {
  if (!window.confirm(t('history.confirmRestore', { version }))) return;
  button.disabled = true;
  try {
    const answer = await api('POST', `/api/history/${version}/restore`);
    if (!ctx.alive()) return;
    notify(t('history.restored', { version, newVersion: answer.version }), { keep: true });
    go('#/history');
  } catch (e) {
    button.disabled = false;
    if (!e.sessionLost && ctx.alive()) button.closest('section').prepend(alertBox(e));
  }
}
