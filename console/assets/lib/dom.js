// DOM helpers. h() builds elements safely: text is always a text node, never HTML, so server
// data can never become markup.

export const $ = (selector, root = document) => root.querySelector(selector);

const PROPERTIES = new Set(['checked', 'disabled', 'selected', 'readOnly', 'hidden', 'multiple', 'required']);

/**
 * Builds an element. `props`: attributes, plus `class` (string or list), `testid`
 * (data-testid), `onEVENT` handlers, boolean properties; `value` is set after the children
 * (so a <select> can take it). Children: nodes, strings (as text), arrays, null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (key === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (key === 'testid') el.setAttribute('data-testid', v);
    else if (key === 'value') value = v;
    else if (key.startsWith('on') && typeof v === 'function') el.addEventListener(key.slice(2).toLowerCase(), v);
    else if (PROPERTIES.has(key)) el[key] = v;
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  add(el, children);
  if (value !== undefined) el.value = String(value);
  return el;
}

export function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false || c === true) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces an element's children (same rules as h(): arrays flattened, null skipped). */
export function setChildren(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

let uidCounter = 0;
export const uid = (prefix) => `${prefix}-${++uidCounter}`;
