// The words of the citizens' pages (landing, privacy notice, page titles, footer), in Italian and
// English, for the one runtime in shared/i18n.js.

import { addStrings } from '../shared/i18n.js';

addStrings({
  it: {
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
  },
  en: {
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
  },
});
