// /staff/dati: the walk-in desk's and the appointments' figures per day and office (docs/walkin.md,
// «Figures»): waiting times, service times, no-shows, walk-ins served and abandoned, and the same
// as a CSV download. Contract: GET /api/staff/figures and /api/staff/figures.csv; the offices to
// choose from are those GET /api/staff/desk lists.

import { getLang, initPage, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { ZONE, labelCells } from './common.js';

const $ = (id) => document.getElementById(id);
const DAY_MS = 86400000;
const MAX_DAYS = 366;

/** The last answer and the query it answered. */
let figures = null;
let shownQuery = null;

const locale = () => (getLang() === 'en' ? 'en-GB' : 'it-IT');

/** Today in Rome as YYYY-MM-DD. */
function todayRome() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

/** `date` (YYYY-MM-DD) moved by `days`. */
function addDays(date, days) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** "lun 7 dic 2026" for a calendar date (no time zone: it is a day). */
function fmtDay(date, weekday = true) {
  return new Intl.DateTimeFormat(locale(), {
    timeZone: 'UTC', weekday: weekday ? 'short' : undefined, day: 'numeric', month: 'short', year: 'numeric',
  }).format(new Date(`${date}T00:00:00Z`));
}

/** Seconds in words: «45 s», «4 min 30 s», «1 h 5 min»; «—» when unknown. */
function fmtSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return '—';
  const total = Math.round(Number(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) return m ? t('fig.dur.hm', { h, m }) : t('fig.dur.h', { h });
  if (m) return s ? t('fig.dur.ms', { m, s }) : t('fig.dur.m', { m });
  return t('fig.dur.s', { s });
}

function fmtRate(rate) {
  if (rate === null || rate === undefined) return '—';
  return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(rate);
}

const fmtCount = (n) => new Intl.NumberFormat(locale()).format(n ?? 0);

/** A waiting time's cell: median and 90th percentile, on how many waits. */
function waitCell(w) {
  if (!w || !w.count) return el('td', { text: t('fig.wait.none') });
  return el('td', {},
    el('span', { class: 'fig-line', text: t('fig.wait.p50', { v: fmtSeconds(w.p50_seconds) }) }),
    el('span', { class: 'fig-line', text: t('fig.wait.p90', { v: fmtSeconds(w.p90_seconds) }) }),
    el('span', { class: 'fig-line help', text: t('fig.wait.count', { n: fmtCount(w.count) }) }));
}

function servicesCell(services) {
  if (!services?.length) return el('td', { text: '—' });
  return el('td', {}, el('ul', { class: 'fig-services' }, ...services.map((s) => el('li', {
    text: t('fig.service', {
      name: s.service_id === null && !s.service_name ? t('fig.walkin') : s.service_name,
      n: fmtCount(s.count), mean: fmtSeconds(s.mean_seconds), p50: fmtSeconds(s.p50_seconds),
    }),
  }))));
}

function render() {
  const table = $('fig-table');
  const tbody = table.querySelector('tbody');
  if (!figures || !shownQuery) return;
  const officeName = shownQuery.office ? ($('fig-office').querySelector(`option[value="${CSS.escape(shownQuery.office)}"]`)?.textContent ?? '') : t('fig.office.all');
  $('fig-caption').textContent = t('fig.caption', { from: fmtDay(shownQuery.from, false), to: fmtDay(shownQuery.to, false), office: officeName });
  tbody.replaceChildren(...figures.map((d) => el('tr', { dataset: { date: d.date, office: d.office_id } },
    el('th', { scope: 'row' }, el('time', { datetime: d.date, text: fmtDay(d.date) })),
    el('td', { text: d.office_name }),
    waitCell(d.appointment_wait),
    waitCell(d.walkin_wait),
    servicesCell(d.services),
    el('td', { text: fmtCount(d.appointments_closed) }),
    el('td', { text: fmtCount(d.no_shows) }),
    el('td', { text: fmtRate(d.no_show_rate) }),
    el('td', { text: fmtCount(d.walkins_served) }),
    el('td', { text: fmtCount(d.walkins_abandoned) }))));
  labelCells(table);
  table.hidden = figures.length === 0;
  $('fig-empty').hidden = figures.length > 0;
}

/** The form as a query, or null after marking what is wrong. */
function readForm() {
  const form = $('fig-form');
  clearErrors(form);
  const from = $('fig-from');
  const to = $('fig-to');
  const valid = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));
  for (const input of [from, to]) {
    if (!valid(input.value)) {
      showError($('fig-error'), t('fig.invalid.date'), [input]);
      input.focus();
      return null;
    }
  }
  if (from.value > to.value) {
    showError($('fig-error'), t('fig.invalid.order'), [from, to]);
    from.focus();
    return null;
  }
  if ((Date.parse(to.value) - Date.parse(from.value)) / DAY_MS + 1 > MAX_DAYS) {
    showError($('fig-error'), t('fig.invalid.long', { n: MAX_DAYS }), [from, to]);
    from.focus();
    return null;
  }
  return { from: from.value, to: to.value, office: $('fig-office').value };
}

function queryString(q) {
  const params = new URLSearchParams({ from: q.from, to: q.to });
  if (q.office) params.set('office', q.office);
  return params.toString();
}

/** The CSV link asks what the form says now. */
function updateCsv() {
  const from = $('fig-from').value;
  const to = $('fig-to').value;
  const q = from && to ? `?${queryString({ from, to, office: $('fig-office').value })}` : '';
  $('fig-csv').href = `/api/staff/figures.csv${q}`;
}

async function load(q, { focus = false } = {}) {
  $('fig-submit').disabled = true;
  $('fig-status').textContent = t('loading');
  let answer;
  try {
    answer = await api(`/api/staff/figures?${queryString(q)}`);
  } catch (e) {
    $('fig-submit').disabled = false;
    $('fig-status').textContent = '';
    if (e.status === 401) {
      denied(t('fig.session'), true);
      return;
    }
    const field = e.code.includes('office') ? $('fig-office') : e.status === 400 || e.status === 422 ? $('fig-from') : null;
    showError($('fig-error'), e.message, field ? [field] : []);
    (field ?? $('fig-error')).focus?.();
    return;
  }
  $('fig-submit').disabled = false;
  figures = Array.isArray(answer) ? answer : [];
  shownQuery = q;
  render();
  $('fig-status').textContent = t('fig.count', { n: figures.length });
  if (focus) $('fig-results-title').focus();
}

function denied(message, login) {
  $('loading').hidden = true;
  $('fig-view').hidden = true;
  $('fig-denied-text').textContent = message;
  $('fig-login').hidden = !login;
  $('fig-denied').hidden = false;
}

/** The offices of the desk (those this official works in; all of them for an administrator). */
async function loadOffices() {
  let desk;
  try {
    desk = await api('/api/staff/desk');
  } catch {
    return; // Without the list, «all my offices» still works.
  }
  const select = $('fig-office');
  const offices = [...(desk?.offices ?? [])].sort((a, b) => a.office_name.localeCompare(b.office_name, locale()));
  select.replaceChildren(select.options[0], ...offices.map((o) => el('option', { value: o.office_id, text: o.office_name })));
}

async function init() {
  initPage();
  try {
    await api('/api/auth/me');
  } catch (e) {
    denied(e.status === 401 ? t('fig.session') : e.message, e.status === 401);
    return;
  }
  document.title = t('fig.doctitle');
  const today = todayRome();
  $('fig-to').value = today;
  $('fig-from').value = addDays(today, -29);
  await loadOffices();
  updateCsv();
  for (const id of ['fig-from', 'fig-to', 'fig-office']) $(id).addEventListener('change', updateCsv);
  $('fig-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const q = readForm();
    if (!q) return;
    updateCsv();
    await load(q, { focus: true });
  });
  onLangChange(() => {
    document.title = t('fig.doctitle');
    render();
    if (figures) $('fig-status').textContent = t('fig.count', { n: figures.length });
  });
  $('loading').hidden = true;
  $('fig-view').hidden = false;
  await load({ from: $('fig-from').value, to: $('fig-to').value, office: '' });
}

init();
