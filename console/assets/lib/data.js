// Small helpers over the API's JSON values and user input.

export const enc = encodeURIComponent;

export const list = (v) => (Array.isArray(v) ? v : []);

export const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** Deep equality of JSON values (object key order does not matter). */
export function sameJson(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameJson(a[k], b[k]));
}

export const splitList = (text) => String(text || '').split(',').map((s) => s.trim()).filter(Boolean);
