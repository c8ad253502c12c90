// One key-rate-limit plugin's limits and per-tenant overrides, edited in place (on the
// consumers page).

import { t } from '../lib/i18n.js';
import { h, uid, setChildren } from '../lib/dom.js';
import { clone, list, enc } from '../lib/data.js';
import { api } from '../lib/api.js';
import { btn } from '../lib/ui.js';
import { FormErrors, saving } from '../lib/forms.js';
import { notify } from '../lib/notice.js';
import { refresh } from '../lib/router.js';

const PERIODS = ['second', 'minute', 'hour', 'day'];

/** One key-rate-limit plugin: base limits and per-tenant overrides, edited in place. */
export function limitsCard(item, editable, ctx) {
  const plugin = item.plugin;
  const model = {
    limits: clone(list(item.limits)),
    overrides: Object.entries(item.overrides || {}).map(([tenant, o]) => {
      const { limits, ...extra } = o || {};
      return { tenant, limits: clone(list(limits)), extra };
    }),
  };
  const card = h('section', { class: 'card', testid: `limits-${plugin}`, 'aria-labelledby': `lim-${plugin}` });
  const errors = new FormErrors(`error-limit-${plugin}`);
  const baseErr = errors.slot('limits', null, `limit-${plugin}-limits`);
  const overridesErr = errors.slot('overrides', null, `limit-${plugin}-overrides`);
  const save = btn(t('common.save'), { class: 'btn-primary', testid: `limit-save-${plugin}` });
  const newTenant = h('input', { type: 'text', id: uid('t'), list: 'tenant-list', testid: `limit-${plugin}-new-tenant`, autocomplete: 'off', spellcheck: 'false' });

  const rowsEditor = (rows, prefix, label) => h('div', { class: 'limit-rows', role: 'group', 'aria-label': label },
    rows.length ? rows.map((row, i) => {
      const per = h('select', {
        testid: `${prefix}-${i}-per`, 'aria-label': t('limits.perN', { n: i + 1 }), disabled: !editable,
        value: row.per || 'minute', onchange: (ev) => { row.per = ev.target.value; },
      }, [...new Set([...PERIODS, row.per].filter(Boolean))].map((p) => h('option', { value: p }, t(`per.${p}`))));
      const count = h('input', {
        type: 'number', min: '0', step: '1', inputmode: 'numeric', class: 'count', testid: `${prefix}-${i}-count`,
        'aria-label': t('limits.countN', { n: i + 1 }), value: row.count ?? '', disabled: !editable,
        oninput: (ev) => { row.count = ev.target.value; },
      });
      return h('div', { class: 'limit-row' },
        count, h('span', { class: 'muted' }, t('limits.requestsPer')), per,
        editable ? btn(t('common.remove'), {
          class: 'btn-small btn-link', testid: `${prefix}-${i}-remove`, 'aria-label': t('limits.removeRow', { n: i + 1 }),
          onclick: () => { rows.splice(i, 1); draw(); },
        }) : null);
    }) : h('p', { class: 'muted small' }, t('limits.noRows')),
    editable ? btn(t('limits.addRow'), {
      class: 'btn-small', testid: `${prefix}-add`,
      onclick: () => { rows.push({ per: 'minute', count: '' }); draw(); },
    }) : null);

  const draw = () => {
    setChildren(card,
      h('div', { class: 'card-head' },
        h('h3', { id: `lim-${plugin}` }, plugin),
        h('span', { class: 'muted' }, t('limits.keyScope', { key: item.key ?? '—', scope: item.scope ?? 'local' }))),
      errors.top,
      h('h4', {}, t('limits.base')),
      rowsEditor(model.limits, `limit-${plugin}-base`, t('limits.base')),
      baseErr,
      h('h4', {}, t('limits.overrides')),
      model.overrides.length ? null : h('p', { class: 'muted small' }, t('limits.noOverrides')),
      model.overrides.map((o, oi) => h('div', { class: 'override', testid: `limit-${plugin}-override-${o.tenant}` },
        h('div', { class: 'override-head' },
          h('strong', {}, t('limits.tenant', { tenant: o.tenant })),
          Object.keys(o.extra).length ? h('span', { class: 'muted small' }, Object.entries(o.extra).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')) : null,
          editable ? btn(t('limits.removeOverride'), {
            class: 'btn-small btn-link', testid: `limit-${plugin}-override-${o.tenant}-delete`,
            onclick: () => { model.overrides.splice(oi, 1); draw(); },
          }) : null),
        rowsEditor(o.limits, `limit-${plugin}-override-${o.tenant}`, t('limits.tenant', { tenant: o.tenant })))),
      overridesErr,
      editable ? h('div', { class: 'add-override' },
        h('label', { for: newTenant.id }, t('limits.newOverride')), newTenant,
        btn(t('limits.addOverride'), {
          class: 'btn-small', testid: `limit-${plugin}-add-override`,
          onclick: () => {
            const tenant = newTenant.value.trim();
            errors.clear();
            if (!tenant) {
              errors.show([{ field: 'overrides', message: t('limits.tenantRequired') }]);
              return;
            }
            if (model.overrides.some((o) => o.tenant === tenant)) {
              errors.show([{ field: 'overrides', message: t('limits.tenantExists', { tenant }) }]);
              return;
            }
            model.overrides.push({ tenant, limits: [{ per: 'minute', count: '' }], extra: {} });
            newTenant.value = '';
            draw();
          },
        })) : null,
      editable ? h('div', { class: 'form-actions' }, save) : null);
  };

  save.addEventListener('click', async () => {
    errors.clear();
    const problems = [];
    const rows = (src, fieldKey, who) => src.map((row, i) => {
      const raw = String(row.count ?? '').trim();
      const count = Number(raw);
      if (raw === '' || !Number.isInteger(count) || count < 0) {
        problems.push({ field: fieldKey, message: t('limits.badCount', { who, n: i + 1 }) });
      }
      return { ...row, per: row.per || 'minute', count };
    });
    const limits = rows(model.limits, 'limits', t('limits.base'));
    const overrides = {};
    for (const o of model.overrides) {
      const tenantRows = rows(o.limits, 'overrides', t('limits.tenant', { tenant: o.tenant }));
      if (!tenantRows.length && !Object.keys(o.extra).length) continue;
      overrides[o.tenant] = { ...o.extra, limits: tenantRows };
    }
    if (problems.length) {
      errors.show(problems);
      return;
    }
    const answer = await saving(save, errors, () => api('PUT', `/api/limits/${enc(plugin)}`, { limits, overrides }));
    if (!answer || !ctx.alive()) return;
    notify(t('limits.saved', { plugin, version: answer.version }), { keep: true });
    refresh();
  });

  draw();
  return card;
}
