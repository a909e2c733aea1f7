// The App IO section of /staff/admin (docs/appio.md): whether notifications go out, IO's address,
// the service's API key (write-only: the server says whether one is stored, never what it is), and
// the recent messages with their outcome. Also the words of the users' fiscal-code field.
// Contract: server/src/api/appio.rs (`/api/admin/appio`, `/api/admin/appio/messages`).
//
// Imported by admin.js: its words are in the catalog before the page is translated.

import { addStrings, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, fmtDateTime, labelCells } from './common.js';

addStrings({
  it: {
    'appio.title': 'Notifiche su app IO',
    'appio.intro': 'Chi prenota può chiedere di ricevere anche su app IO la conferma, gli spostamenti, l\'annullamento e il promemoria, indicando il codice fiscale; i consiglieri con il codice fiscale registrato ricevono le convocazioni. L\'email resta il canale principale. Il codice fiscale si conserva solo finché serve; i messaggi non contengono nome, dettagli o codice fiscale.',
    'appio.enabled': 'Invia le notifiche su app IO',
    'appio.base_url': 'Indirizzo delle API di IO',
    'appio.base_url.help': 'Di norma https://api.io.pagopa.it/api/v1.',
    'appio.api_key': 'Chiave API del servizio IO',
    'appio.api_key.set': 'Una chiave è salvata: lascia vuoto per non cambiarla.',
    'appio.api_key.unset': 'Nessuna chiave salvata: serve per attivare le notifiche (back office di IO, chiave primaria del servizio).',
    'appio.log': 'Messaggi recenti',
    'appio.log.none': 'Nessun messaggio.',
    'appio.log.when': 'Quando',
    'appio.log.kind': 'Tipo',
    'appio.log.subject': 'Oggetto',
    'appio.log.code': 'Codice fiscale',
    'appio.log.status': 'Esito',
    'appio.log.detail': 'Tentativi e dettaglio',
    'appio.refresh': 'Aggiorna i messaggi',
    'appio.kind.booked': 'Prenotazione',
    'appio.kind.moved': 'Spostamento',
    'appio.kind.cancelled': 'Annullamento',
    'appio.kind.reminder': 'Promemoria',
    'appio.kind.convocation': 'Convocazione',
    'appio.status.queued': 'In coda',
    'appio.status.sent': 'Inviato',
    'appio.status.refused': 'Non inviato: il cittadino non è su IO o ha disattivato il servizio',
    'appio.status.failed': 'Non inviato (errore)',
    'appio.status.cancelled': 'Ritirato',
    'usr.fiscal': 'Codice fiscale (per le convocazioni su app IO)',
    'usr.fiscal.help': 'Facoltativo. Vuoto: nessuna convocazione su app IO.',
  },
  en: {
    'appio.title': 'App IO notifications',
    'appio.intro': 'Whoever books may ask to get the confirmation, moves, cancellation and reminder in the IO app too, giving their fiscal code; councillors whose fiscal code is recorded get convocations. Email stays the primary channel. The fiscal code is kept only as long as needed; messages carry no name, details or fiscal code.',
    'appio.enabled': 'Send App IO notifications',
    'appio.base_url': 'IO API address',
    'appio.base_url.help': 'Normally https://api.io.pagopa.it/api/v1.',
    'appio.api_key': 'IO service API key',
    'appio.api_key.set': 'A key is stored: leave empty to keep it.',
    'appio.api_key.unset': 'No key stored: one is needed to turn notifications on (IO back office, the service\'s primary key).',
    'appio.log': 'Recent messages',
    'appio.log.none': 'No messages.',
    'appio.log.when': 'When',
    'appio.log.kind': 'Kind',
    'appio.log.subject': 'Subject',
    'appio.log.code': 'Fiscal code',
    'appio.log.status': 'Outcome',
    'appio.log.detail': 'Attempts and detail',
    'appio.refresh': 'Refresh the messages',
    'appio.kind.booked': 'Booking',
    'appio.kind.moved': 'Move',
    'appio.kind.cancelled': 'Cancellation',
    'appio.kind.reminder': 'Reminder',
    'appio.kind.convocation': 'Convocation',
    'appio.status.queued': 'Queued',
    'appio.status.sent': 'Sent',
    'appio.status.refused': 'Not sent: the citizen is not on IO or turned the service off',
    'appio.status.failed': 'Not sent (error)',
    'appio.status.cancelled': 'Withdrawn',
    'usr.fiscal': 'Fiscal code (for App IO convocations)',
    'usr.fiscal.help': 'Optional. Empty: no App IO convocations.',
  },
});

const $ = (id) => document.getElementById(id);

let settings = null;
let messages = [];

function failed(e) {
  if (e.status === 401) {
    location.assign('/staff');
    return;
  }
  const field = { invalid_base_url: $('appio-base-url'), invalid_api_key: $('appio-api-key'), api_key_required: $('appio-api-key') }[e.code] ?? null;
  showError($('appio-error'), e.message, field ? [field] : []);
  (field ?? $('appio-error')).focus?.();
}

function fill(s) {
  settings = s;
  $('appio-enabled').checked = s.enabled;
  $('appio-base-url').value = s.base_url;
  $('appio-api-key').value = '';
  renderKeyState();
}

function renderKeyState() {
  if (settings) $('appio-api-key-state').textContent = t(settings.api_key_set ? 'appio.api_key.set' : 'appio.api_key.unset');
}

function renderLog() {
  const tbody = $('appio-log-table').querySelector('tbody');
  if (!messages.length) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 6, text: t('appio.log.none') })));
    return;
  }
  tbody.replaceChildren(...messages.map((m) => el('tr', {},
    el('td', { text: fmtDateTime(m.updated_at * 1000) }),
    el('td', { text: t(`appio.kind.${m.kind}`) }),
    el('th', { scope: 'row', text: m.subject }),
    el('td', { text: m.fiscal_code || '—' }),
    el('td', { text: t(`appio.status.${m.status}`) }),
    el('td', { text: m.last_error ? `${m.attempts} — ${m.last_error}` : String(m.attempts) }))));
  labelCells($('appio-log-table'));
}

async function loadLog() {
  try {
    messages = await api('/api/admin/appio/messages');
  } catch (e) {
    failed(e);
    return;
  }
  renderLog();
}

/** Wires the section and fills it; called once the page knows an administrator is there. */
export async function initAppio() {
  $('appio-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors($('appio-form'));
    let saved;
    try {
      saved = await api('/api/admin/appio', {
        method: 'PUT',
        body: {
          enabled: $('appio-enabled').checked,
          base_url: $('appio-base-url').value.trim(),
          api_key: $('appio-api-key').value.trim(),
        },
      });
    } catch (e) {
      failed(e);
      return;
    }
    fill(saved);
    announce(t('admin.saved'));
  });
  $('appio-refresh').addEventListener('click', loadLog);
  try {
    fill(await api('/api/admin/appio'));
  } catch (e) {
    failed(e);
  }
  await loadLog();
  onLangChange(() => {
    renderKeyState();
    renderLog();
  });
}
