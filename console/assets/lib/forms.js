// Form building blocks: labelled fields, checkbox groups, inline errors (FormErrors) and
// saving() which runs a save with its button disabled.

import { h, uid } from './dom.js';
import { ApiError } from './api.js';
import { errorPosition, errText } from './format.js';

/** A labelled control with an optional hint and an inline error slot (`error-KEY`). */
export function field(labelText, control, { errors, key, hint, testKey } = {}) {
  if (!control.id) control.id = uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('h') }, hint) : null;
  const errEl = key && errors ? errors.slot(key, control, testKey) : null;
  const described = [hintEl && hintEl.id, errEl && errEl.id].filter(Boolean).join(' ');
  if (described) control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control, hintEl, errEl);
}

/** A group of checkboxes in a fieldset. */
export function checkGroup(legend, items, { errors, key, hint } = {}) {
  const errEl = key && errors ? errors.slot(key) : null;
  return h('fieldset', { class: 'field checks' },
    h('legend', {}, legend),
    h('div', { class: 'check-row' }, items),
    hint ? h('p', { class: 'hint' }, hint) : null,
    errEl);
}

export function checkbox(labelText, props) {
  const input = h('input', { type: 'checkbox', id: uid('c'), ...props });
  return h('label', { class: 'check', for: input.id }, input, h('span', {}, labelText));
}

/** Inline errors of one form: a slot per field and one at the top for the rest. */
export class FormErrors {
  constructor(topTestId = 'error-form') {
    this.top = h('div', { class: 'field-error form-error', role: 'alert', testid: topTestId, hidden: true });
    this.slots = new Map();
  }

  slot(key, control, testKey = key) {
    const el = h('div', { class: 'field-error', id: uid('e'), testid: `error-${testKey}`, hidden: true });
    this.slots.set(key, { el, control });
    return el;
  }

  clear() {
    this.top.replaceChildren();
    this.top.hidden = true;
    for (const { el, control } of this.slots.values()) {
      el.replaceChildren();
      el.hidden = true;
      if (control) control.removeAttribute('aria-invalid');
    }
  }

  /** Shows positioned errors ({message, field?, line?, column?}) under their fields. */
  show(errors) {
    let first = null;
    for (const e of errors) {
      const slot = e.field ? this.slots.get(e.field) : null;
      const el = slot ? slot.el : this.top;
      el.append(h('div', {}, slot ? e.message : errorPosition(e)));
      el.hidden = false;
      if (slot && slot.control) slot.control.setAttribute('aria-invalid', 'true');
      first = first || el;
    }
    if (first) first.scrollIntoView({ block: 'nearest' });
  }

  /** Shows what a failed save answered: 422 errors per field, anything else at the top. */
  fail(err) {
    if (err && err.sessionLost) return;
    if (err instanceof ApiError && err.status === 422 && err.errors.length) this.show(err.errors);
    else this.show([{ message: errText(err) }]);
  }
}

/** Runs a save with its button disabled; resolves with the answer or null (errors shown). */
export async function saving(button, errors, work) {
  errors.clear();
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } catch (e) {
    errors.fail(e);
    return null;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
