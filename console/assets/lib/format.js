// Numbers, times, hashes, labels and errors as text for the page (in the current locale).

import { t, locale } from './i18n.js';
import { list } from './data.js';
import { ApiError } from './api.js';

export function fmtNumber(n, digits = 1) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  return n.toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtPercent(ratio) {
  if (typeof ratio !== 'number' || !Number.isFinite(ratio)) return '—';
  const p = ratio * 100;
  return `${fmtNumber(p, p > 0 && p < 1 ? 2 : 1)} %`;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'medium' });
}

export const shortHash = (hash) => (hash ? String(hash).slice(0, 10) : '—');

const labelsText = (labels) => Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');

export function splitSummary(split) {
  const entries = list(split);
  if (!entries.length) return null;
  return entries.map((s) => `${labelsText(s.labels) || '*'}: ${s.weight ?? 0}`).join(' · ');
}

export function errText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('err.network');
    return t('err.status', { status: err.status, error: err.message });
  }
  return String((err && err.message) || err);
}

export function errorPosition(e) {
  let s = e.field ? `${e.field}: ${e.message}` : e.message;
  if (e.line > 0) s += ` (${t('err.at', { line: e.line, column: e.column })})`;
  return s;
}
