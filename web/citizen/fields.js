// The citizen's form fields, written once for the booking and the walk-in desk: a labelled input
// with its help and error, and the privacy notice's required acknowledgement.

import { addStrings, t } from '../shared/i18n.js';
import { el } from '../shared/dom.js';

addStrings({
  it: {
    'field.required': 'obbligatorio',
    'privacy.read': 'Prima di proseguire leggi l\'{link}.',
    'privacy.link': 'informativa privacy',
    'privacy.newtab': '(si apre in una nuova scheda)',
    'privacy.ack': 'Ho letto e compreso l\'informativa privacy',
  },
  en: {
    'field.required': 'required',
    'privacy.read': 'Before going on, read the {link}.',
    'privacy.link': 'privacy notice',
    'privacy.newtab': '(opens in a new tab)',
    'privacy.ack': 'I have read and understood the privacy notice',
  },
});

function requiredMark() {
  return [el('span', { 'aria-hidden': 'true' }, ' *'), el('span', { class: 'sr-only' }, ` (${t('field.required')})`)];
}

/**
 * `input` labelled `label`, given `id`, with its `help` and `error` tied to it for screen readers;
 * `describedBy`: ids of further text about it elsewhere on the page.
 */
export function field(id, label, input, { required = false, help = null, error = null, describedBy: more = [] } = {}) {
  const describedBy = [help ? `${id}-help` : null, ...more, error ? `${id}-error` : null].filter(Boolean).join(' ') || null;
  input.id = id;
  if (describedBy) input.setAttribute('aria-describedby', describedBy);
  if (error) input.setAttribute('aria-invalid', 'true');
  if (required) input.required = true;
  return el('div', { class: 'field' },
    el('label', { for: id }, label, required ? requiredMark() : null),
    help ? el('p', { id: `${id}-help`, class: 'help', text: help }) : null,
    input,
    error ? el('p', { id: `${id}-error`, class: 'field-error', text: error }) : null);
}

/**
 * The privacy notice (a link that opens in a new tab, so the form keeps what was typed) and the
 * required «Ho letto e compreso» checkbox `#privacy-ack`, with its error like the other fields'.
 */
export function privacyAck({ checked, onchange, error = null }) {
  const id = 'privacy-ack';
  const [before, after] = t('privacy.read', { link: '\u0000' }).split('\u0000');
  const input = el('input', {
    type: 'checkbox', id, required: true, checked,
    'aria-describedby': ['privacy-help', error ? `${id}-error` : null].filter(Boolean).join(' '),
    'aria-invalid': error ? 'true' : null,
    onchange: (e) => onchange(e.target.checked),
  });
  return el('div', { class: 'field privacy-field' },
    el('p', { id: 'privacy-help', class: 'help' }, before,
      el('a', { href: '/privacy', target: '_blank', rel: 'noopener' },
        t('privacy.link'), ' ', el('span', { class: 'new-tab', text: t('privacy.newtab') })),
      after),
    el('div', { class: 'check' }, input, el('label', { for: id }, t('privacy.ack'), requiredMark())),
    error ? el('p', { id: `${id}-error`, class: 'field-error', text: error }) : null);
}
