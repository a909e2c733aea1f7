// The words of the citizens' pages (landing, privacy notice, page titles, footer), in Italian and
// English, for the one runtime in shared/i18n.js.

import { addStrings } from '../shared/i18n.js';

addStrings({
  it: {
    'footer.note': 'Nessun cookie di profilazione, nessun tracciamento, nessun servizio di terze parti.',

    'landing.doctitle': 'Uffici virtuali — {municipality}',
    'landing.title': 'Uffici virtuali',
    'landing.book': 'Prenota un appuntamento',
    'landing.services': 'Servizi',
    'nav.breadcrumb': 'Percorso',
    'book.doctitle': 'Prenota un appuntamento — {municipality}',
    'manage.doctitle': 'Il tuo appuntamento — {municipality}',
    'services.doctitle': 'Servizi — {municipality}',
    'live.doctitle': 'Diretta della seduta — {municipality}',
    'landing.intro': '{municipality}, uffici virtuali: incontri in video il personale degli uffici, anche con condivisione dello schermo, direttamente dal browser. Non serve installare nulla né creare un account.',
    'landing.how.title': 'Come partecipare',
    'landing.how.1': 'Ricevi dall\'ufficio il link del tuo appuntamento (per email o messaggio).',
    'landing.how.2': 'Qualche minuto prima dell\'orario apri il link con un browser aggiornato (Firefox, Chrome, Edge o Safari).',
    'landing.how.3': 'Controlla videocamera e microfono, poi premi «Entra».',
    'landing.paste.label': 'Hai già il link o il codice di prenotazione? Incollalo qui',
    'landing.paste.button': 'Apri',
    'landing.paste.invalid': 'Il testo inserito non è un link di questo sito né un codice di prenotazione. Copia il link completo ricevuto per email.',

    'privacy.doctitle': 'Informativa privacy — {municipality}',
    'legal.doctitle': 'Note legali — {municipality}',
  },
  en: {
    'footer.note': 'No profiling cookies, no tracking, no third-party services.',

    'landing.doctitle': 'Virtual offices — {municipality}',
    'landing.book': 'Book an appointment',
    'landing.services': 'Services',
    'nav.breadcrumb': 'Breadcrumb',
    'book.doctitle': 'Book an appointment — {municipality}',
    'manage.doctitle': 'Your appointment — {municipality}',
    'services.doctitle': 'Services — {municipality}',
    'live.doctitle': 'Live session — {municipality}',
    'landing.title': 'Virtual offices',
    'landing.intro': '{municipality}, virtual offices: meet the office staff by video, with screen sharing, right from your browser. Nothing to install, no account needed.',
    'landing.how.title': 'How to join',
    'landing.how.1': 'The office sends you the link of your appointment (by email or message).',
    'landing.how.2': 'A few minutes before the time, open the link in an up-to-date browser (Firefox, Chrome, Edge or Safari).',
    'landing.how.3': 'Check your camera and microphone, then press “Join”.',
    'landing.paste.label': 'Already have the link or the booking code? Paste it here',
    'landing.paste.button': 'Open',
    'landing.paste.invalid': 'This is neither a link of this site nor a booking code. Copy the whole link you received by email.',

    'privacy.doctitle': 'Privacy notice — {municipality}',
    'legal.doctitle': 'Legal notes — {municipality}',
  },
});
