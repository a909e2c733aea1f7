// The slot picker of /prenota and /appuntamento: the month as a calendar in which only the days
// with free times are buttons, then the chosen day's times as one radio group. A month of free
// times (hundreds) is never one list: a screen-reader user hears a calendar, then a few times.
// Keyboard: one tab stop in the calendar (the chosen or first free day), arrows move between free
// days (left/right: previous/next; up/down: a week), Home/End the first/last, Enter or Space chooses.

import { addStrings, getLang, t } from '../shared/i18n.js';
import { el } from '../shared/dom.js';

addStrings({
  it: {
    'pick.calendar': 'Giorni con orari liberi — {month}',
    'pick.hint': 'Scegli un giorno tra quelli evidenziati, poi un orario. Con la tastiera: frecce per spostarti tra i giorni, Invio per sceglierne uno.',
    'pick.weekdays': 'lunedì,martedì,mercoledì,giovedì,venerdì,sabato,domenica',
    'pick.day': '{date}: {n} orari liberi', 'pick.day.one': '{date}: 1 orario libero',
    'pick.times': 'Orari liberi di {date}',
  },
  en: {
    'pick.calendar': 'Days with free times — {month}',
    'pick.hint': 'Choose one of the highlighted days, then a time. With the keyboard: arrows move between days, Enter chooses one.',
    'pick.weekdays': 'Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday',
    'pick.day': '{date}: {n} free times', 'pick.day.one': '{date}: 1 free time',
    'pick.times': 'Free times on {date}',
  },
});

/** `YYYY-MM-DD` of a slot (its start carries the Rome offset, so this is the Rome date). */
export const dayOf = (slot) => slot.start.slice(0, 10);
const timeOf = (slot) => slot.start.slice(11, 16);
/** "giovedì 11 dicembre 2025" from the server's label "giovedì 11 dicembre 2025, ore 10:00". */
function dateLabel(slot) {
  const label = getLang() === 'en' ? slot.label_en : slot.label_it;
  const i = label.lastIndexOf(', ');
  return i > 0 ? label.slice(0, i) : label;
}

/**
 * The calendar and, once a day is chosen, its times.
 * `slots`: the month's free slots; `month`: `YYYY-MM`; `monthLabel`: its name; `day`: the chosen
 * `YYYY-MM-DD` or ''; `selected`: the chosen slot's start or ''; `onDay(day)`, `onSlot(slot)`;
 * `describedBy`: the id of an error about the choice, if any. Returns `[calendar, times | null]`.
 */
export function slotPicker({ slots, month, monthLabel, day, selected, onDay, onSlot, describedBy = null }) {
  const byDay = new Map();
  for (const x of slots) {
    if (!byDay.has(dayOf(x))) byDay.set(dayOf(x), []);
    byDay.get(dayOf(x)).push(x);
  }
  const chosen = byDay.has(day) ? day : '';
  const tabStop = chosen || [...byDay.keys()][0];
  const [y, m] = month.split('-').map(Number);
  const lead = (new Date(Date.UTC(y, m - 1, 1)).getUTCDay() + 6) % 7;
  const length = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const weekdays = t('pick.weekdays').split(',');
  const cells = [];
  for (let i = 0; i < lead; i++) cells.push(el('td'));
  for (let d = 1; d <= length; d++) {
    const iso = `${month}-${String(d).padStart(2, '0')}`;
    const free = byDay.get(iso);
    cells.push(free
      ? el('td', {}, el('button', {
        type: 'button', class: 'day', 'data-day': iso, tabIndex: iso === tabStop ? 0 : -1,
        'aria-pressed': String(iso === chosen),
        'aria-label': t(free.length === 1 ? 'pick.day.one' : 'pick.day', { date: dateLabel(free[0]), n: free.length }),
        text: String(d), onclick: () => onDay(iso),
      }))
      : el('td', { class: 'day-none' }, String(d)));
  }
  while (cells.length % 7) cells.push(el('td'));
  const rows = [];
  for (let i = 0; i < cells.length; i += 7) rows.push(el('tr', {}, cells.slice(i, i + 7)));
  const table = el('table', { class: 'calendar', id: 'day-calendar', 'aria-describedby': ['day-hint', describedBy].filter(Boolean).join(' '), onkeydown: moveFocus },
    el('caption', { text: t('pick.calendar', { month: monthLabel }) }),
    el('thead', {}, el('tr', {}, weekdays.map((w) => el('th', { scope: 'col' }, el('abbr', { title: w, text: w.slice(0, 3) }))))),
    el('tbody', {}, rows));
  const calendar = el('div', { class: 'calendar-wrap' }, el('p', { id: 'day-hint', class: 'help', text: t('pick.hint') }), table);
  if (!chosen) return [calendar, null];
  const times = byDay.get(chosen);
  return [calendar, el('fieldset', { class: 'slots', id: 'times', 'aria-describedby': describedBy },
    el('legend', { text: t('pick.times', { date: dateLabel(times[0]) }) }),
    times.map((x) => el('label', {},
      el('input', { type: 'radio', name: 'slot', value: x.start, checked: x.start === selected, onchange: () => onSlot(x) }),
      el('span', { text: timeOf(x) }))))];
}

/** Arrow keys between the free days (the calendar is one tab stop). */
function moveFocus(e) {
  const buttons = [...e.currentTarget.querySelectorAll('button[data-day]')];
  const i = buttons.indexOf(document.activeElement);
  if (i < 0) return;
  const from = buttons[i].dataset.day;
  const weekAway = (sign) => {
    const d = new Date(`${from}T12:00:00Z`);
    d.setUTCDate(d.getUTCDate() + 7 * sign);
    const target = d.toISOString().slice(0, 10);
    // That day, or the nearest free day beyond it in the same direction.
    return sign > 0 ? buttons.find((b) => b.dataset.day >= target) : buttons.findLast((b) => b.dataset.day <= target);
  };
  const target = {
    ArrowLeft: () => buttons[i - 1], ArrowRight: () => buttons[i + 1], ArrowUp: () => weekAway(-1),
    ArrowDown: () => weekAway(1), Home: () => buttons[0], End: () => buttons[buttons.length - 1],
  }[e.key]?.();
  if (!target) return;
  e.preventDefault();
  for (const b of buttons) b.tabIndex = b === target ? 0 : -1;
  target.focus();
}

/** After a day is chosen: focus its first time (the radio group announces the day). */
export function focusTimes() {
  document.querySelector('#times input[name=slot]')?.focus();
}

/** After a re-render: focus the chosen day's button. */
export function focusDay(day) {
  document.querySelector(`#day-calendar button[data-day="${day}"]`)?.focus();
}
