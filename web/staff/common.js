// What the staff pages share beyond the toolkit in shared/: live announcements, Europe/Rome times,
// copy buttons, table cells labelled for phones.

import { getLang, t } from '../shared/i18n.js';
import './strings.js';

export const ZONE = 'Europe/Rome';

/** Says `text` through the page's polite live region. */
export function announce(text) {
  const live = document.getElementById('live');
  if (!live) return;
  // Emptying first makes screen readers repeat an identical message.
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 50);
}

function locale() {
  return getLang() === 'en' ? 'en-GB' : 'it-IT';
}

/** "10:02" in Rome. */
export function fmtTime(iso) {
  return new Intl.DateTimeFormat(locale(), { timeZone: ZONE, hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
}

/** "mar 11 mar, 10:02" in Rome. */
export function fmtDateTime(iso) {
  return new Intl.DateTimeFormat(locale(), {
    timeZone: ZONE, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  }).format(new Date(iso));
}

/** Wires a copy button to a read-only input holding a link. */
export function wireCopy(button, input) {
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      announce(t('copied'));
    } catch {
      input.focus();
      input.select();
      announce(t('copy.failed'));
    }
  });
}

/**
 * Copies each column header's text onto the body cells (`data-label`), so that on a phone, where
 * staff.css lays a table's rows out as cards instead of scrolling sideways, every value keeps its
 * name. Call after (re)rendering the body.
 */
export function labelCells(table) {
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll('tbody tr')) {
    [...row.children].forEach((cell, i) => {
      if (heads[i] && cell.colSpan === 1) cell.dataset.label = heads[i];
      else delete cell.dataset.label;
    });
  }
}
