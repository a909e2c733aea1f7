// Staff pages (/staff, /staff/admin, /staff/setup): Italian and English strings and the helpers the
// three pages share (API calls, errors next to forms, live announcements, Europe/Rome times).
//
// Same conventions as the citizens' i18n.js (`data-i18n`, `data-i18n-attr`) and the same stored
// language, so a switch on one page holds on the others; kept separate so that the staff strings
// do not travel to every citizen's browser.

const STORAGE_KEY = 'sportello.lang';
const LANGS = ['it', 'en'];
export const ZONE = 'Europe/Rome';

const STRINGS = {
  it: {
    'skip': 'Vai al contenuto principale',
    'lang.switch': 'English',
    'lang.switch.code': 'en',
    'app.name': 'Sportello',
    'app.staff': 'Area del personale',
    'footer.privacy': 'Informativa privacy',
    'footer.note': 'Solo cookie tecnici: la sessione di lavoro. Nessun tracciamento.',
    'loading': 'Caricamento…',
    'error.network': 'Il server non risponde. Controlla la connessione e riprova.',
    'error.generic': 'Operazione non riuscita.',
    'error.session': 'La sessione è scaduta: accedi di nuovo.',
    'required': '(obbligatorio)',
    'copy': 'Copia',
    'copied': 'Link copiato negli appunti.',
    'copy.failed': 'Copia non riuscita: seleziona il link e copialo a mano.',
    'cancel': 'Annulla',
    'save': 'Salva',
    'close': 'Chiudi',

    'role.admin': 'Amministratore',
    'role.official': 'Funzionario',
    'role.councillor': 'Consigliere',
    'role.chair': 'Presidente',

    'login.doctitle': 'Accesso del personale — Sportello',
    'login.title': 'Accesso del personale',
    'login.intro': 'Accedi con l\'email e la password del tuo account di Sportello.',
    'login.email': 'Email',
    'login.password': 'Password',
    'login.missing.both': 'Inserisci l\'email e la password.',
    'login.missing.email': 'Inserisci l\'email.',
    'login.missing.password': 'Inserisci la password.',
    'login.submit': 'Accedi',
    'login.forgot': 'Password dimenticata? Chiedi un nuovo link all\'amministratore.',

    'dash.doctitle': 'Scrivania — Sportello',
    'dash.title': 'La mia scrivania',
    'dash.hello': '{name} — {role}',
    'dash.offices': 'Uffici: {list}',
    'dash.nooffices': 'Non fai ancora parte di nessun ufficio.',
    'dash.admin': 'Amministrazione',
    'dash.calendar': 'Il mio calendario',
    'dash.logout': 'Esci',
    'dash.password': 'Cambia password',
    'pw.title': 'Cambia password',
    'pw.current': 'Password attuale',
    'pw.new': 'Nuova password',
    'pw.rule': 'Almeno 10 caratteri. Una frase di più parole è facile da ricordare e difficile da indovinare.',
    'pw.submit': 'Cambia password',
    'pw.done': 'Password cambiata. Le altre sessioni aperte sono state chiuse.',

    'wait.title': 'Chi è in attesa',
    'wait.empty': 'Nessuno è in attesa.',
    'wait.item': '{name} è in attesa dalle {time}',
    'wait.where.appt': 'Appuntamento: {what}',
    'wait.where.vo': 'Il mio ufficio virtuale',
    'wait.admit': 'Fai entrare',
    'wait.admit.label': 'Fai entrare {name}',
    'wait.decline': 'Rifiuta',
    'wait.decline.label': 'Rifiuta {name}',
    'wait.new': '{name} è in attesa.',
    'wait.admitted': '{name} è stato fatto entrare.',
    'wait.declined': '{name} è stato rifiutato.',
    'wait.decline.confirm': 'Rifiutare {name}? La persona vedrà che non è stata ammessa.',
    'wait.error': 'Impossibile aggiornare l\'elenco delle persone in attesa.',
    'wait.where.office': 'Ufficio virtuale: {name}',
    'wait.where.appt.unknown': 'Appuntamento',
    'wait.admit.enter': 'Fai entrare e apri la stanza',
    'wait.admit.enter.label': 'Fai entrare {name} e apri la stanza in una nuova scheda',
    'wait.admitted.entered': '{name} è stato fatto entrare; la stanza è aperta in una nuova scheda.',
    'wait.admit.popup': 'Il browser ha bloccato la nuova scheda, quindi {name} non è ancora entrato: apri la stanza con il link e fallo entrare da lì.',
    'wait.openroom': 'Apri la stanza di {name}',

    'appt.title': 'Appuntamenti di oggi e prossimi',
    'appt.empty': 'Nessun appuntamento nei prossimi 30 giorni.',
    'appt.caption': 'Appuntamenti dei tuoi uffici, in ordine di orario (ora di Roma).',
    'appt.col.time': 'Orario',
    'appt.col.citizen': 'Cittadino',
    'appt.col.service': 'Servizio',
    'appt.col.office': 'Ufficio',
    'appt.col.mode': 'Modalità',
    'appt.col.status': 'Stato',
    'appt.col.actions': 'Azioni',
    'appt.refresh': 'Aggiorna',
    'appt.join': 'Entra nella stanza',
    'appt.join.label': 'Entra nella stanza dell\'appuntamento di {name}',
    'appt.completed': 'Concluso',
    'appt.no_show': 'Non presentato',
    'appt.cancel': 'Annulla appuntamento',
    'appt.details': 'Dettagli',
    'appt.action.label': '{action}: appuntamento di {name}',
    'appt.confirm.completed': 'Segnare come concluso l\'appuntamento di {name}?',
    'appt.confirm.no_show': 'Segnare che {name} non si è presentato?',
    'appt.confirm.cancelled': 'Annullare l\'appuntamento di {name}? Il cittadino non potrà più entrare con il suo link.',
    'appt.status.changed': 'Appuntamento di {name}: {status}.',
    'appt.opened': 'La stanza è stata aperta in una nuova scheda.',
    'appt.popup': 'Il browser ha bloccato la nuova scheda: usa il link «Apri la stanza».',
    'appt.openlink': 'Apri la stanza di {name}',
    'appt.waiting': '{n} in attesa',
    'mode.video': 'Video',
    'mode.in_person': 'In presenza',
    'status.confirmed': 'Confermato',
    'status.cancelled': 'Annullato',
    'status.completed': 'Concluso',
    'status.no_show': 'Non presentato',
    'detail.title': 'Dettagli dell\'appuntamento',
    'detail.code': 'Codice',
    'detail.email': 'Email',
    'detail.details': 'Note del cittadino',
    'detail.official': 'Funzionario assegnato',
    'detail.joined': 'Entrato alle',
    'detail.audit': 'Storico delle modifiche',
    'detail.audit.at': 'Quando',
    'detail.audit.actor': 'Chi',
    'detail.audit.action': 'Cosa',
    'detail.audit.detail': 'Dettaglio',
    'detail.audit.citizen': '{name} (cittadino)',
    'detail.audit.system': 'Sistema (automatico)',

    'vo.title': 'Il mio ufficio virtuale',
    'vo.intro': 'Una stanza tua, per incontri non prenotati. Chi entra con un invito aspetta finché non lo fai entrare.',
    'vo.open': 'Apri il mio ufficio virtuale',
    'vo.link': 'Link per entrare come conduttore (valido 12 ore, non condividerlo)',
    'vo.enter': 'Entra',
    'vo.ready': 'Il link del tuo ufficio virtuale è pronto.',
    'ovo.title': 'Uffici virtuali dei miei uffici',
    'ovo.intro': 'La stanza condivisa di ciascun ufficio: chiunque ci lavori può condurla.',
    'ovo.open': 'Apri l\'ufficio virtuale dell\'ufficio',
    'ovo.open.label': 'Apri l\'ufficio virtuale dell\'ufficio {name}',
    'ovo.link': 'Link per entrare come conduttore nell\'ufficio virtuale di {name} (valido 12 ore, non condividerlo)',
    'ovo.ready': 'Il link dell\'ufficio virtuale di {name} è pronto.',
    'inv.title': 'Invita una persona',
    'inv.name': 'Nome dell\'invitato',
    'inv.name.help': 'Il nome che gli altri vedranno nella stanza.',
    'inv.hours': 'Validità in ore',
    'inv.hours.help': 'Da 1 a 72 ore.',
    'inv.submit': 'Crea l\'invito',
    'inv.link': 'Link di invito da inviare alla persona',
    'inv.ready': 'Invito creato: copia il link e invialo alla persona.',

    'setup.doctitle': 'Imposta la password — Sportello',
    'setup.title': 'Imposta la tua password',
    'setup.intro': 'Questo link si può usare una sola volta. Scegli la password con cui accederai all\'area del personale.',
    'setup.first': 'Primo amministratore',
    'setup.first.help': 'Questo è il link del primo avvio di Sportello: indica anche la tua email e il tuo nome, che saranno quelli del primo amministratore.',
    'setup.email': 'Email (solo per il primo amministratore)',
    'setup.name': 'Nome e cognome (solo per il primo amministratore)',
    'setup.password': 'Nuova password',
    'setup.password2': 'Ripeti la password',
    'setup.rule': 'Almeno 10 caratteri.',
    'setup.submit': 'Imposta la password',
    'setup.mismatch': 'Le due password non coincidono.',
    'setup.short': 'La password deve avere almeno 10 caratteri.',
    'setup.nolink': 'Manca il codice del link. Apri il link completo che hai ricevuto.',
    'setup.invalid': 'Link non valido',
    'setup.done': 'Password impostata. Apertura della scrivania…',
    'setup.login': 'Vai all\'accesso del personale',

    'admin.doctitle': 'Amministrazione — Sportello',
    'admin.title': 'Amministrazione',
    'admin.back': 'Torna alla scrivania',
    'admin.forbidden': 'Questa pagina è riservata agli amministratori.',
    'admin.edit': 'Modifica',
    'admin.delete': 'Elimina',
    'admin.new': 'Nuovo',
    'admin.saved': 'Salvato.',
    'admin.deleted': 'Eliminato.',
    'admin.confirm.delete': 'Eliminare «{name}»?',
    'admin.editing': 'Modifica di «{name}»',
    'admin.actions': 'Azioni',
    'admin.none': 'Nessun elemento.',
    'off.title': 'Uffici',
    'off.new': 'Nuovo ufficio',
    'off.name': 'Nome',
    'off.description': 'Descrizione',
    'off.address': 'Indirizzo',
    'off.email': 'Email dell\'ufficio',
    'off.phone': 'Telefono',
    'off.hours': 'Orari di apertura',
    'off.hours.help': 'Per ogni giorno, fasce separate da virgola, ad esempio «08:30-12:30, 14:30-16:30». Vuoto = chiuso.',
    'off.members': 'Personale dell\'ufficio',
    'off.members.none': 'Nessun funzionario: crea prima il personale.',
    'off.hours.invalid': 'Orario non valido per {day}: usa «HH:MM-HH:MM», ad esempio 08:30-12:30.',
    'off.closed': 'Chiuso',
    'day.0': 'Lunedì', 'day.1': 'Martedì', 'day.2': 'Mercoledì', 'day.3': 'Giovedì', 'day.4': 'Venerdì', 'day.5': 'Sabato', 'day.6': 'Domenica',
    'svc.title': 'Servizi',
    'svc.new': 'Nuovo servizio',
    'svc.name': 'Nome',
    'svc.description': 'Descrizione',
    'svc.duration': 'Durata in minuti',
    'svc.duration.help': 'Da 5 a 240, a multipli di 5.',
    'svc.bring': 'Cosa serve',
    'svc.modes': 'Modalità',
    'svc.modes.both': 'Video e in presenza',
    'svc.offices': 'Uffici che offrono il servizio',
    'svc.offices.none': 'Nessun ufficio: crea prima un ufficio.',
    'usr.title': 'Personale',
    'usr.new': 'Nuova persona',
    'usr.email': 'Email',
    'usr.name': 'Nome e cognome',
    'usr.role': 'Ruolo',
    'usr.active': 'Account attivo',
    'usr.state': 'Stato',
    'usr.state.active': 'Attivo',
    'usr.state.inactive': 'Disattivato',
    'usr.state.nopw': 'In attesa della password',
    'usr.link': 'Nuovo link per la password',
    'usr.link.label': 'Nuovo link per la password di {name}',
    'usr.link.title': 'Link per impostare la password',
    'usr.link.help': 'Invia questo link alla persona (vale 7 giorni, una sola volta). Non verrà mostrato di nuovo.',
    'usr.created': 'Account creato. Invia alla persona il link per impostare la password.',
    'set.title': 'Impostazioni del Comune',
    'set.name': 'Nome del Comune',
    'set.patron': 'Giorno del santo patrono (MM-GG)',
    'set.patron.help': 'Ad esempio 06-24. Lascia vuoto se non c\'è una festa patronale.',
    'set.notice': 'Preavviso minimo in minuti',
    'set.notice.help': 'Fino a quanti minuti prima dell\'orario si può prenotare.',
    'set.horizon': 'Orizzonte di prenotazione in giorni',
    'set.horizon.help': 'Quanti giorni in avanti i cittadini possono prenotare (1–366).',
  },
  en: {
    'skip': 'Skip to main content',
    'lang.switch': 'Italiano',
    'lang.switch.code': 'it',
    'app.name': 'Sportello',
    'app.staff': 'Staff area',
    'footer.privacy': 'Privacy notice',
    'footer.note': 'Technical cookies only: your work session. No tracking.',
    'loading': 'Loading…',
    'error.network': 'The server does not answer. Check the connection and try again.',
    'error.generic': 'The operation failed.',
    'error.session': 'Your session has expired: please log in again.',
    'required': '(required)',
    'copy': 'Copy',
    'copied': 'Link copied to the clipboard.',
    'copy.failed': 'Copying failed: select the link and copy it by hand.',
    'cancel': 'Cancel',
    'save': 'Save',
    'close': 'Close',

    'role.admin': 'Administrator',
    'role.official': 'Official',
    'role.councillor': 'Councillor',
    'role.chair': 'Chair',

    'login.doctitle': 'Staff login — Sportello',
    'login.title': 'Staff login',
    'login.intro': 'Log in with the email and password of your Sportello account.',
    'login.email': 'Email',
    'login.password': 'Password',
    'login.missing.both': 'Enter your email and password.',
    'login.missing.email': 'Enter your email.',
    'login.missing.password': 'Enter your password.',
    'login.submit': 'Log in',
    'login.forgot': 'Forgot your password? Ask the administrator for a new link.',

    'dash.doctitle': 'Desk — Sportello',
    'dash.title': 'My desk',
    'dash.hello': '{name} — {role}',
    'dash.offices': 'Offices: {list}',
    'dash.nooffices': 'You are not part of any office yet.',
    'dash.admin': 'Administration',
    'dash.calendar': 'My calendar',
    'dash.logout': 'Log out',
    'dash.password': 'Change password',
    'pw.title': 'Change password',
    'pw.current': 'Current password',
    'pw.new': 'New password',
    'pw.rule': 'At least 10 characters. A phrase of several words is easy to remember and hard to guess.',
    'pw.submit': 'Change password',
    'pw.done': 'Password changed. Your other open sessions have been ended.',

    'wait.title': 'Who is waiting',
    'wait.empty': 'Nobody is waiting.',
    'wait.item': '{name} has been waiting since {time}',
    'wait.where.appt': 'Appointment: {what}',
    'wait.where.vo': 'My virtual office',
    'wait.admit': 'Admit',
    'wait.admit.label': 'Admit {name}',
    'wait.decline': 'Decline',
    'wait.decline.label': 'Decline {name}',
    'wait.new': '{name} is waiting.',
    'wait.admitted': '{name} has been admitted.',
    'wait.declined': '{name} has been declined.',
    'wait.decline.confirm': 'Decline {name}? They will see that they were not admitted.',
    'wait.error': 'The list of waiting people cannot be updated.',
    'wait.where.office': 'Virtual office: {name}',
    'wait.where.appt.unknown': 'Appointment',
    'wait.admit.enter': 'Admit and open the room',
    'wait.admit.enter.label': 'Admit {name} and open the room in a new tab',
    'wait.admitted.entered': '{name} has been admitted; the room is open in a new tab.',
    'wait.admit.popup': 'The browser blocked the new tab, so {name} has not been admitted yet: open the room with the link and admit them from there.',
    'wait.openroom': 'Open {name}\'s room',

    'appt.title': 'Today\'s and upcoming appointments',
    'appt.empty': 'No appointments in the next 30 days.',
    'appt.caption': 'Appointments of your offices, by time (Rome time).',
    'appt.col.time': 'Time',
    'appt.col.citizen': 'Citizen',
    'appt.col.service': 'Service',
    'appt.col.office': 'Office',
    'appt.col.mode': 'Mode',
    'appt.col.status': 'Status',
    'appt.col.actions': 'Actions',
    'appt.refresh': 'Refresh',
    'appt.join': 'Enter the room',
    'appt.join.label': 'Enter the room of {name}\'s appointment',
    'appt.completed': 'Completed',
    'appt.no_show': 'No-show',
    'appt.cancel': 'Cancel appointment',
    'appt.details': 'Details',
    'appt.action.label': '{action}: {name}\'s appointment',
    'appt.confirm.completed': 'Mark {name}\'s appointment as completed?',
    'appt.confirm.no_show': 'Record that {name} did not show up?',
    'appt.confirm.cancelled': 'Cancel {name}\'s appointment? The citizen will no longer be able to enter with their link.',
    'appt.status.changed': '{name}\'s appointment: {status}.',
    'appt.opened': 'The room has been opened in a new tab.',
    'appt.popup': 'The browser blocked the new tab: use the «Open the room» link.',
    'appt.openlink': 'Open {name}\'s room',
    'appt.waiting': '{n} waiting',
    'mode.video': 'Video',
    'mode.in_person': 'In person',
    'status.confirmed': 'Confirmed',
    'status.cancelled': 'Cancelled',
    'status.completed': 'Completed',
    'status.no_show': 'No-show',
    'detail.title': 'Appointment details',
    'detail.code': 'Code',
    'detail.email': 'Email',
    'detail.details': 'Citizen\'s notes',
    'detail.official': 'Assigned official',
    'detail.joined': 'Joined at',
    'detail.audit': 'Change history',
    'detail.audit.at': 'When',
    'detail.audit.actor': 'Who',
    'detail.audit.action': 'What',
    'detail.audit.detail': 'Detail',
    'detail.audit.citizen': '{name} (citizen)',
    'detail.audit.system': 'System (automatic)',

    'vo.title': 'My virtual office',
    'vo.intro': 'A room of your own, for meetings without a booking. Invited people wait until you admit them.',
    'vo.open': 'Open my virtual office',
    'vo.link': 'Link to enter as host (valid 12 hours, do not share it)',
    'vo.enter': 'Enter',
    'vo.ready': 'The link to your virtual office is ready.',
    'ovo.title': 'Virtual offices of my offices',
    'ovo.intro': 'Each office\'s shared room: anyone who works there can host it.',
    'ovo.open': 'Open the office\'s virtual office',
    'ovo.open.label': 'Open the virtual office of {name}',
    'ovo.link': 'Link to enter the virtual office of {name} as host (valid 12 hours, do not share it)',
    'ovo.ready': 'The link to the virtual office of {name} is ready.',
    'inv.title': 'Invite someone',
    'inv.name': 'Guest\'s name',
    'inv.name.help': 'The name others will see in the room.',
    'inv.hours': 'Valid for (hours)',
    'inv.hours.help': 'From 1 to 72 hours.',
    'inv.submit': 'Create the invitation',
    'inv.link': 'Invitation link to send to the person',
    'inv.ready': 'Invitation created: copy the link and send it to the person.',

    'setup.doctitle': 'Set your password — Sportello',
    'setup.title': 'Set your password',
    'setup.intro': 'This link works once. Choose the password you will use to log in to the staff area.',
    'setup.first': 'First administrator',
    'setup.first.help': 'This is the link of Sportello\'s first start: also enter your email and name, which will be the first administrator\'s.',
    'setup.email': 'Email (first administrator only)',
    'setup.name': 'Full name (first administrator only)',
    'setup.password': 'New password',
    'setup.password2': 'Repeat the password',
    'setup.rule': 'At least 10 characters.',
    'setup.submit': 'Set the password',
    'setup.mismatch': 'The two passwords differ.',
    'setup.short': 'The password must have at least 10 characters.',
    'setup.nolink': 'The link\'s code is missing. Open the complete link you received.',
    'setup.invalid': 'Invalid link',
    'setup.done': 'Password set. Opening your desk…',
    'setup.login': 'Go to the staff login',

    'admin.doctitle': 'Administration — Sportello',
    'admin.title': 'Administration',
    'admin.back': 'Back to my desk',
    'admin.forbidden': 'This page is for administrators only.',
    'admin.edit': 'Edit',
    'admin.delete': 'Delete',
    'admin.new': 'New',
    'admin.saved': 'Saved.',
    'admin.deleted': 'Deleted.',
    'admin.confirm.delete': 'Delete «{name}»?',
    'admin.editing': 'Editing «{name}»',
    'admin.actions': 'Actions',
    'admin.none': 'Nothing yet.',
    'off.title': 'Offices',
    'off.new': 'New office',
    'off.name': 'Name',
    'off.description': 'Description',
    'off.address': 'Address',
    'off.email': 'Office email',
    'off.phone': 'Phone',
    'off.hours': 'Opening hours',
    'off.hours.help': 'For each day, ranges separated by commas, e.g. «08:30-12:30, 14:30-16:30». Empty = closed.',
    'off.members': 'Office staff',
    'off.members.none': 'No officials: create the staff first.',
    'off.hours.invalid': 'Invalid hours for {day}: use «HH:MM-HH:MM», e.g. 08:30-12:30.',
    'off.closed': 'Closed',
    'day.0': 'Monday', 'day.1': 'Tuesday', 'day.2': 'Wednesday', 'day.3': 'Thursday', 'day.4': 'Friday', 'day.5': 'Saturday', 'day.6': 'Sunday',
    'svc.title': 'Services',
    'svc.new': 'New service',
    'svc.name': 'Name',
    'svc.description': 'Description',
    'svc.duration': 'Duration in minutes',
    'svc.duration.help': 'From 5 to 240, in multiples of 5.',
    'svc.bring': 'What to bring',
    'svc.modes': 'Modes',
    'svc.modes.both': 'Video and in person',
    'svc.offices': 'Offices offering the service',
    'svc.offices.none': 'No offices: create an office first.',
    'usr.title': 'Staff',
    'usr.new': 'New person',
    'usr.email': 'Email',
    'usr.name': 'Full name',
    'usr.role': 'Role',
    'usr.active': 'Account active',
    'usr.state': 'State',
    'usr.state.active': 'Active',
    'usr.state.inactive': 'Deactivated',
    'usr.state.nopw': 'Waiting for a password',
    'usr.link': 'New password link',
    'usr.link.label': 'New password link for {name}',
    'usr.link.title': 'Link to set the password',
    'usr.link.help': 'Send this link to the person (valid 7 days, once). It will not be shown again.',
    'usr.created': 'Account created. Send the person the link to set their password.',
    'set.title': 'Municipality settings',
    'set.name': 'Municipality name',
    'set.patron': 'Patron saint\'s day (MM-DD)',
    'set.patron.help': 'For example 06-24. Leave empty if there is no patron\'s holiday.',
    'set.notice': 'Minimum notice in minutes',
    'set.notice.help': 'Up to how many minutes before the time a slot can be booked.',
    'set.horizon': 'Booking horizon in days',
    'set.horizon.help': 'How many days ahead citizens can book (1–366).',
  },
};

function storedLang() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(v)) return v;
  } catch { /* storage disabled: Italian */ }
  return 'it';
}

/** Adds a page's own strings (e.g. calendar.js) before `initPage`; existing keys are kept. */
export function addStrings(extra) {
  for (const lang of LANGS) STRINGS[lang] = { ...(extra[lang] ?? {}), ...STRINGS[lang] };
}

let current = storedLang();
const listeners = new Set();

export function getLang() {
  return current;
}

/** `key` in the current language with `{param}` placeholders filled. */
export function t(key, params = {}) {
  const s = STRINGS[current][key] ?? STRINGS.it[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

export function onLangChange(fn) {
  listeners.add(fn);
}

function setLang(lang) {
  current = lang;
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* not persisted */ }
  document.documentElement.lang = lang;
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

/** Translates the static page and wires `#lang-switch`. */
export function initPage() {
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

/**
 * One JSON API call. Resolves to `{ok, status, data, error}`; `error` is the server's
 * `{code, message}` (message in the page language) or a network error. Never throws.
 */
export async function api(method, path, body) {
  const init = { method, headers: { 'Accept-Language': current }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: null, error: { code: 'network', message: t('error.network') } };
  }
  let data = null;
  const text = await response.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (response.ok) return { ok: true, status: response.status, data, error: null };
  const error = data?.error ?? { code: 'http_' + response.status, message: t('error.generic') };
  if (!error.message) error.message = t('error.generic');
  return { ok: false, status: response.status, data, error };
}

/**
 * Shows `message` in a form's error box (role=alert, so it is announced) and marks `fields`
 * invalid; they point at the box through aria-describedby. An empty message clears it.
 */
export function showError(box, message, fields = []) {
  box.textContent = message || '';
  box.hidden = !message;
  for (const field of fields) {
    if (!field) continue;
    if (message) {
      field.setAttribute('aria-invalid', 'true');
      const ids = new Set((field.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean));
      ids.add(box.id);
      field.setAttribute('aria-describedby', [...ids].join(' '));
    } else {
      field.removeAttribute('aria-invalid');
    }
  }
}

/** Clears every error box and invalid mark inside `form`. */
export function clearErrors(form) {
  for (const box of form.querySelectorAll('.field-error')) showError(box, '');
  for (const field of form.querySelectorAll('[aria-invalid]')) field.removeAttribute('aria-invalid');
}

/** Says `text` through the page's polite live region. */
export function announce(text) {
  const live = document.getElementById('live');
  if (!live) return;
  // Emptying first makes screen readers repeat an identical message.
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 50);
}

function locale() {
  return current === 'en' ? 'en-GB' : 'it-IT';
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

/** `el(tag, {attrs}, ...children)`: small DOM builder (text children are text nodes, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
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
