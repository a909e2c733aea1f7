// Italian (default) and English strings, and the language switch.
//
// Static markup names its strings with `data-i18n="key"` (text) and
// `data-i18n-attr="attr:key;attr:key"` (attributes); `applyI18n` fills both. Dynamic parts of the
// page register with `onLangChange` and re-render their own labels.

const STORAGE_KEY = 'sportello.lang';
export const LANGS = ['it', 'en'];

const STRINGS = {
  it: {
    'app.name': 'Sportello',
    'skip': 'Vai al contenuto principale',
    'lang.switch': 'English',
    'lang.switch.code': 'en',
    'footer.privacy': 'Informativa privacy',
    'footer.note': 'Nessun cookie di profilazione, nessun tracciamento, nessun servizio di terze parti.',

    'landing.doctitle': 'Sportello — uffici virtuali',
    'landing.title': 'Sportello — uffici virtuali',
    'landing.book': 'Prenota un appuntamento',
    'landing.services': 'Servizi',
    'nav.breadcrumb': 'Percorso',
    'book.doctitle': 'Prenota un appuntamento — Sportello',
    'manage.doctitle': 'Il tuo appuntamento — Sportello',
    'services.doctitle': 'Servizi — Sportello',
    'live.doctitle': 'Diretta della seduta — Sportello',
    'landing.intro': 'Sportello è l\'ufficio virtuale del tuo Comune: incontri in video il personale degli uffici, anche con condivisione dello schermo, direttamente dal browser. Non serve installare nulla né creare un account.',
    'landing.how.title': 'Come partecipare',
    'landing.how.1': 'Ricevi dall\'ufficio il link del tuo appuntamento (per email o messaggio).',
    'landing.how.2': 'Qualche minuto prima dell\'orario apri il link con un browser aggiornato (Firefox, Chrome, Edge o Safari).',
    'landing.how.3': 'Controlla videocamera e microfono, poi premi «Entra».',
    'landing.paste.label': 'Hai già il link o il codice di prenotazione? Incollalo qui',
    'landing.paste.button': 'Apri',
    'landing.paste.invalid': 'Il testo inserito non è un link di Sportello né un codice di prenotazione. Copia il link completo ricevuto per email.',

    'privacy.doctitle': 'Informativa privacy — Sportello',
    'privacy.title': 'Informativa privacy',
    'privacy.p1': 'Il titolare del trattamento è il Comune che ti ha inviato il link: l\'informativa completa, con i contatti del Responsabile della protezione dei dati, è pubblicata sul sito del Comune.',
    'privacy.p2': 'Videocamera e microfono sono usati solo mentre partecipi a una stanza e solo dopo il tuo consenso nel browser; quando esci vengono spenti.',
    'privacy.p3': 'Questa applicazione non usa cookie né strumenti di tracciamento e non contatta servizi di terze parti. Nel browser conserva soltanto la lingua scelta.',
    'privacy.back': 'Torna alla pagina iniziale',

    'join.doctitle': 'Entra — Sportello',
    'join.title': 'Entra nell\'ufficio virtuale',
    'join.room': 'Stanza',
    'join.name': 'Il tuo nome',
    'join.name.help': 'Il nome viene dal link di invito e sarà visibile agli altri partecipanti.',
    'join.devices': 'Videocamera e microfono',
    'join.camera': 'Videocamera',
    'join.mic': 'Microfono',
    'join.meter': 'Livello del microfono',
    'join.meter.help': 'Prova a parlare: se il microfono funziona la barra si muove.',
    'join.preview': 'Anteprima della tua videocamera',
    'join.preview.off': 'Nessuna immagine dalla videocamera',
    'join.button': 'Entra',
    'join.viewer': 'Partecipi come spettatore: non servono videocamera né microfono.',
    'join.media.waiting': 'Richiesta di accesso a videocamera e microfono…',
    'join.media.ready': 'Videocamera e microfono pronti.',
    'join.media.denied': 'Il browser non consente l\'accesso a videocamera e microfono. Puoi entrare comunque (gli altri non ti vedranno né sentiranno) oppure consentire l\'accesso nelle impostazioni del sito e ricaricare la pagina.',
    'join.media.none': 'Nessuna videocamera o microfono trovati. Puoi entrare comunque.',
    'join.media.nocamera': 'Nessuna videocamera disponibile: gli altri ti sentiranno ma non ti vedranno.',
    'join.media.nomic': 'Nessun microfono disponibile: gli altri ti vedranno ma non ti sentiranno.',
    'join.media.unsupported': 'Questo browser non permette di usare videocamera e microfono su questa pagina (serve una connessione sicura https e un browser aggiornato).',
    'join.expired': 'Il link sembra scaduto. Se non riesci a entrare, chiedi un nuovo link all\'ufficio.',
    'device.unnamed': 'Dispositivo {n}',
    'device.none': 'Nessun dispositivo',

    'token.missing': 'Il link non è completo: manca il codice di accesso. Apri il link completo che hai ricevuto oppure chiedi un nuovo link all\'ufficio.',
    'token.invalid': 'Il link non è valido o è stato copiato in parte. Controlla di averlo copiato per intero oppure chiedi un nuovo link all\'ufficio.',

    'status.lobby': 'Non ancora connesso',
    'status.joining': 'Connessione in corso…',
    'status.joining.retry': 'Connessione non riuscita, nuovo tentativo in corso…',
    'status.in-room': 'Connesso',
    'status.reconnecting': 'Riconnessione in corso…',
    'status.left': 'Disconnesso',
    'status.error': 'Disconnesso',

    'room.doctitle': '{room} — Sportello',
    'room.title': 'Stanza {room}',
    'room.tiles': 'Partecipanti',
    'room.count.one': '1 partecipante',
    'room.count.many': '{n} partecipanti',
    'room.controls': 'Controlli della chiamata',
    'btn.mic': 'Microfono',
    'btn.cam': 'Videocamera',
    'btn.screen': 'Condividi schermo',
    'btn.leave': 'Esci',
    'btn.audio': 'Attiva l\'audio',
    'state.on': 'attivo',
    'state.off': 'spento',
    'state.sharing': 'in corso',

    'tile.you': '{name} (tu)',
    'tile.mic.off': 'microfono spento',
    'tile.cam.off': 'videocamera spenta',
    'tile.speaking': 'sta parlando',
    'tile.speaking.badge': 'Parla',
    'tile.viewer': 'spettatore',
    'tile.screen': 'Schermo condiviso da {name}',
    'tile.screen.you': 'Il tuo schermo condiviso',

    'announce.joined': 'Nuovo partecipante: {name}',
    'announce.left': '{name} ha lasciato la stanza',
    'announce.screen': '{name} condivide lo schermo',
    'announce.reconnected': 'Connessione ripristinata',

    'left.title': 'Hai lasciato la stanza',
    'left.text': 'Videocamera e microfono sono spenti. Puoi rientrare finché il link è valido.',
    'left.rejoin': 'Rientra',

    'error.title': 'Impossibile partecipare alla stanza',
    'error.retry': 'Riprova',
    'error.help.token': 'Chiedi un nuovo link all\'ufficio.',
    'error.help.replaced': 'Hai aperto la stanza in un\'altra finestra o su un altro dispositivo, quindi questa finestra è stata disconnessa. Per continuare qui premi «Riprova»: l\'altra finestra verrà disconnessa.',
    'error.help.not_yet_valid': 'Il link non è ancora valido. All\'orario dell\'appuntamento premi «Riprova».',
    'error.help.room_full': 'La stanza ha raggiunto il numero massimo di partecipanti. Riprova più tardi oppure contatta l\'ufficio.',
    'error.help.generic': 'Ricarica la pagina. Se il problema continua, chiedi un nuovo link all\'ufficio.',
    'error.close.4001': 'Il link non è valido o è scaduto.',
    'error.close.4003': 'Il link è di un\'altra stanza.',
    'error.close.4009': 'La stanza è stata aperta da un\'altra finestra.',
    'error.close.4029': 'La stanza è al completo.',
    'error.close.1009': 'Errore di comunicazione con il server.',
    'error.generic': 'Si è verificato un errore.',
    'alert.dismiss': 'Chiudi l\'avviso',
    'media.error.mic': 'Impossibile usare il microfono.',
    'media.error.cam': 'Impossibile usare la videocamera.',
    'screen.error': 'Impossibile condividere lo schermo.',
    'status.waiting': 'In sala d\'attesa',
    'waiting.title': 'Sala d\'attesa',
    'waiting.text': 'Sei in sala d\'attesa: l\'operatore ti farà entrare a breve. Nel frattempo puoi controllare videocamera e microfono.',
    'error.help.declined': 'Se pensi che sia un errore, contatta l\'ufficio.',
    'error.help.appointment': 'Il link dell\'appuntamento non è più utilizzabile. Per un nuovo appuntamento contatta l\'ufficio.',
    'error.close.4004': 'L\'appuntamento non è più valido.',
    'error.close.4013': 'L\'operatore non ha ammesso l\'ingresso alla stanza.',
    'side.label': 'Sala d\'attesa, chat e documenti',
    'lobby.title': 'In attesa di entrare',
    'lobby.empty': 'Nessuno in attesa.',
    'lobby.since': 'in attesa dalle {time}',
    'lobby.admit': 'Ammetti',
    'lobby.decline': 'Rifiuta',
    'lobby.admit.label': 'Ammetti {name}',
    'lobby.decline.label': 'Rifiuta {name}',
    'announce.waiting': '{name} è in sala d\'attesa',
    'chat.title': 'Chat',
    'chat.list': 'Messaggi',
    'chat.empty': 'Nessun messaggio.',
    'chat.input': 'Scrivi un messaggio',
    'chat.help': 'Invio per inviare, Maiusc+Invio per andare a capo. I messaggi sono conservati per il periodo previsto dall\'informativa.',
    'chat.send': 'Invia',
    'chat.you': 'Tu',
    'chat.too_long': 'Il messaggio può avere al massimo 2000 caratteri.',
    'docs.title': 'Documenti',
    'docs.input': 'Condividi un documento',
    'docs.help': 'PDF, immagini (PNG, JPEG, GIF, WebP), documenti d\'ufficio (Word, Excel, PowerPoint, OpenDocument) o testo.',
    'docs.empty': 'Nessun documento condiviso.',
    'docs.download': 'Scarica {name}',
    'docs.meta': '{size}, da {who}',
    'docs.uploading': 'Caricamento di {name}…',
    'docs.uploaded': 'Documento condiviso: {name}',
    'docs.error': 'Impossibile caricare il documento.',
    'docs.error.download': 'Impossibile scaricare il documento.',
    'announce.document': '{name} ha condiviso {file}',
    // The room in words (GET /api/rooms/{room}), never its internal id.
    'room.appt': 'Appuntamento',
    'room.appt.with': 'con {name}',
    'room.vo': 'Ufficio virtuale di {name}',
    'room.office': 'Ufficio virtuale: {name}',
    'room.virtual': 'Ufficio virtuale',
    'room.alone': 'L\'operatore sta arrivando… Resta pure in questa pagina: entrerà a breve.',
    'side.label.chat': 'Chat e documenti',
    'chat.toggle': 'Chat',
    'chat.unread.one': '1 messaggio non letto',
    'chat.unread.many': '{n} messaggi non letti',
    'chat.close': 'Chiudi la chat',
    'announce.chat': 'Nuovo messaggio in chat da {name}',
  },
  en: {
    'app.name': 'Sportello',
    'skip': 'Skip to main content',
    'lang.switch': 'Italiano',
    'lang.switch.code': 'it',
    'footer.privacy': 'Privacy notice',
    'footer.note': 'No profiling cookies, no tracking, no third-party services.',

    'landing.doctitle': 'Sportello — virtual offices',
    'landing.book': 'Book an appointment',
    'landing.services': 'Services',
    'nav.breadcrumb': 'Breadcrumb',
    'book.doctitle': 'Book an appointment — Sportello',
    'manage.doctitle': 'Your appointment — Sportello',
    'services.doctitle': 'Services — Sportello',
    'live.doctitle': 'Live session — Sportello',
    'landing.title': 'Sportello — virtual offices',
    'landing.intro': 'Sportello is your municipality\'s virtual office: meet the office staff by video, with screen sharing, right from your browser. Nothing to install, no account needed.',
    'landing.how.title': 'How to join',
    'landing.how.1': 'The office sends you the link of your appointment (by email or message).',
    'landing.how.2': 'A few minutes before the time, open the link in an up-to-date browser (Firefox, Chrome, Edge or Safari).',
    'landing.how.3': 'Check your camera and microphone, then press “Join”.',
    'landing.paste.label': 'Already have the link or the booking code? Paste it here',
    'landing.paste.button': 'Open',
    'landing.paste.invalid': 'This is neither a Sportello link nor a booking code. Copy the whole link you received by email.',

    'privacy.doctitle': 'Privacy notice — Sportello',
    'privacy.title': 'Privacy notice',
    'privacy.p1': 'The data controller is the municipality that sent you the link: the full notice, with the contacts of its Data Protection Officer, is published on the municipality\'s website.',
    'privacy.p2': 'Your camera and microphone are used only while you are in a room and only after you allow them in your browser; they are turned off when you leave.',
    'privacy.p3': 'This application uses no cookies or trackers and contacts no third-party services. It keeps only your language choice in the browser.',
    'privacy.back': 'Back to the home page',

    'join.doctitle': 'Join — Sportello',
    'join.title': 'Join the virtual office',
    'join.room': 'Room',
    'join.name': 'Your name',
    'join.name.help': 'Your name comes from the invitation link and will be visible to the other participants.',
    'join.devices': 'Camera and microphone',
    'join.camera': 'Camera',
    'join.mic': 'Microphone',
    'join.meter': 'Microphone level',
    'join.meter.help': 'Try speaking: the bar moves if your microphone works.',
    'join.preview': 'Your camera preview',
    'join.preview.off': 'No picture from the camera',
    'join.button': 'Join',
    'join.viewer': 'You are joining as a viewer: no camera or microphone is needed.',
    'join.media.waiting': 'Asking for access to camera and microphone…',
    'join.media.ready': 'Camera and microphone ready.',
    'join.media.denied': 'The browser does not allow access to your camera and microphone. You can join anyway (the others will neither see nor hear you) or allow access in the site settings and reload the page.',
    'join.media.none': 'No camera or microphone found. You can join anyway.',
    'join.media.nocamera': 'No camera available: the others will hear you but not see you.',
    'join.media.nomic': 'No microphone available: the others will see you but not hear you.',
    'join.media.unsupported': 'This browser cannot use a camera and microphone on this page (a secure https connection and an up-to-date browser are needed).',
    'join.expired': 'This link seems to have expired. If you cannot join, ask the office for a new link.',
    'device.unnamed': 'Device {n}',
    'device.none': 'No device',

    'token.missing': 'The link is incomplete: the access code is missing. Open the whole link you received or ask the office for a new link.',
    'token.invalid': 'The link is not valid or was only partly copied. Check that you copied all of it or ask the office for a new link.',

    'status.lobby': 'Not connected yet',
    'status.joining': 'Connecting…',
    'status.joining.retry': 'Could not connect, trying again…',
    'status.in-room': 'Connected',
    'status.reconnecting': 'Reconnecting…',
    'status.left': 'Disconnected',
    'status.error': 'Disconnected',

    'room.doctitle': '{room} — Sportello',
    'room.title': 'Room {room}',
    'room.tiles': 'Participants',
    'room.count.one': '1 participant',
    'room.count.many': '{n} participants',
    'room.controls': 'Call controls',
    'btn.mic': 'Microphone',
    'btn.cam': 'Camera',
    'btn.screen': 'Share screen',
    'btn.leave': 'Leave',
    'btn.audio': 'Turn on sound',
    'state.on': 'on',
    'state.off': 'off',
    'state.sharing': 'sharing',

    'tile.you': '{name} (you)',
    'tile.mic.off': 'microphone off',
    'tile.cam.off': 'camera off',
    'tile.speaking': 'speaking',
    'tile.speaking.badge': 'Speaking',
    'tile.viewer': 'viewer',
    'tile.screen': 'Screen shared by {name}',
    'tile.screen.you': 'Your shared screen',

    'announce.joined': 'New participant: {name}',
    'announce.left': '{name} left the room',
    'announce.screen': '{name} is sharing their screen',
    'announce.reconnected': 'Connection restored',

    'left.title': 'You left the room',
    'left.text': 'Your camera and microphone are off. You can rejoin while the link is valid.',
    'left.rejoin': 'Rejoin',

    'error.title': 'You cannot take part in the room',
    'error.retry': 'Try again',
    'error.help.token': 'Ask the office for a new link.',
    'error.help.replaced': 'You opened the room in another window or on another device, so this window was disconnected. To continue here press “Try again”: the other window will be disconnected.',
    'error.help.not_yet_valid': 'The link is not valid yet. At the time of your appointment press “Try again”.',
    'error.help.room_full': 'The room has reached its participant limit. Try again later or contact the office.',
    'error.help.generic': 'Reload the page. If the problem persists, ask the office for a new link.',
    'error.close.4001': 'The link is not valid or has expired.',
    'error.close.4003': 'The link belongs to another room.',
    'error.close.4009': 'The room was opened in another window.',
    'error.close.4029': 'The room is full.',
    'error.close.1009': 'Communication error with the server.',
    'error.generic': 'Something went wrong.',
    'alert.dismiss': 'Dismiss the alert',
    'media.error.mic': 'The microphone cannot be used.',
    'media.error.cam': 'The camera cannot be used.',
    'screen.error': 'The screen cannot be shared.',
    'status.waiting': 'In the waiting room',
    'waiting.title': 'Waiting room',
    'waiting.text': 'You are in the waiting room: the official will let you in shortly. Meanwhile you can check your camera and microphone.',
    'error.help.declined': 'If you think this is a mistake, please contact the office.',
    'error.help.appointment': 'The appointment link can no longer be used. Contact the office for a new appointment.',
    'error.close.4004': 'The appointment is no longer valid.',
    'error.close.4013': 'The official did not let you into the room.',
    'side.label': 'Waiting room, chat and documents',
    'lobby.title': 'Waiting to enter',
    'lobby.empty': 'Nobody is waiting.',
    'lobby.since': 'waiting since {time}',
    'lobby.admit': 'Admit',
    'lobby.decline': 'Decline',
    'lobby.admit.label': 'Admit {name}',
    'lobby.decline.label': 'Decline {name}',
    'announce.waiting': '{name} is in the waiting room',
    'chat.title': 'Chat',
    'chat.list': 'Messages',
    'chat.empty': 'No messages.',
    'chat.input': 'Write a message',
    'chat.help': 'Enter sends, Shift+Enter adds a new line. Messages are kept for the period stated in the privacy notice.',
    'chat.send': 'Send',
    'chat.you': 'You',
    'chat.too_long': 'A message can have at most 2000 characters.',
    'docs.title': 'Documents',
    'docs.input': 'Share a document',
    'docs.help': 'PDF, images (PNG, JPEG, GIF, WebP), office documents (Word, Excel, PowerPoint, OpenDocument) or text.',
    'docs.empty': 'No documents shared.',
    'docs.download': 'Download {name}',
    'docs.meta': '{size}, from {who}',
    'docs.uploading': 'Uploading {name}…',
    'docs.uploaded': 'Document shared: {name}',
    'docs.error': 'The document could not be uploaded.',
    'docs.error.download': 'The document could not be downloaded.',
    'announce.document': '{name} shared {file}',
    'room.appt': 'Appointment',
    'room.appt.with': 'with {name}',
    'room.vo': '{name}\'s virtual office',
    'room.office': 'Virtual office: {name}',
    'room.virtual': 'Virtual office',
    'room.alone': 'The official is on the way… Please stay on this page: they will join you shortly.',
    'side.label.chat': 'Chat and documents',
    'chat.toggle': 'Chat',
    'chat.unread.one': '1 unread message',
    'chat.unread.many': '{n} unread messages',
    'chat.close': 'Close the chat',
    'announce.chat': 'New chat message from {name}',
  },
};

function storedLang() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(v)) return v;
  } catch { /* storage disabled: fall back to Italian */ }
  return 'it';
}

let current = storedLang();
const listeners = new Set();

export function getLang() {
  return current;
}

/** Translate `key` in the current language, replacing `{param}` placeholders. */
export function t(key, params = {}) {
  const s = STRINGS[current][key] ?? STRINGS.it[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? ''));
}

/** Fill `data-i18n` texts and `data-i18n-attr` attributes under `root`. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  current = lang;
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* not persisted */ }
  document.documentElement.lang = lang;
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Wire the `#lang-switch` button: it shows the other language's name and switches to it. */
export function initLangSwitch() {
  document.documentElement.lang = current;
  applyI18n(document);
  const btn = document.getElementById('lang-switch');
  if (!btn) return;
  const render = () => {
    btn.textContent = t('lang.switch');
    btn.lang = t('lang.switch.code');
  };
  render();
  onLangChange(render);
  btn.addEventListener('click', () => setLang(current === 'it' ? 'en' : 'it'));
}
