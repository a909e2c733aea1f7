//! The pages the municipality answers for: the privacy notice (GDPR art. 13) written from its
//! settings and this server's retention periods, the legal notes with the accessibility
//! statement's paragraph, and its crest. Built here rather than kept as files because every
//! sentence that names a person, an address or a period must say what this installation does.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sportello_backoffice::settings::{self, Municipality};
use sportello_backoffice::text::escape_html as esc;

use crate::page::{HttpError, frame, html_page, municipality};
use crate::state::AppState;

/// "30 giorni" / "30 days"; whole years and months where they are exact.
fn period(d: Duration, it: bool) -> String {
    let days = d.as_secs() / 86_400;
    let (n, unit) = if days > 0 && days.is_multiple_of(365) {
        (days / 365, if it { ("anno", "anni") } else { ("year", "years") })
    } else if days >= 1 {
        (days, if it { ("giorno", "giorni") } else { ("day", "days") })
    } else {
        (d.as_secs() / 3600, if it { ("ora", "ore") } else { ("hour", "hours") })
    };
    format!("{n} {}", if n == 1 { unit.0 } else { unit.1 })
}

/// A contact line when the value is set: `<li>Label: value</li>`, email addresses as links.
fn contact(label: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if value.contains('@') {
        format!("<li>{label}: <a href=\"mailto:{0}\">{0}</a></li>", esc(value))
    } else {
        format!("<li>{label}: {}</li>", esc(value))
    }
}

/// The controller's and the DPO's contacts, in one language.
fn who(m: &Municipality, it: bool) -> String {
    let l = |i: &'static str, e: &'static str| if it { i } else { e };
    let mut controller = format!("<p>{}</p><ul>", esc(m.controller()));
    controller.push_str(&contact(l("Indirizzo", "Address"), &m.address));
    controller.push_str(&contact("Email", &m.email));
    controller.push_str(&contact("PEC", &m.pec));
    controller.push_str(&contact(l("Telefono", "Phone"), &m.phone));
    controller.push_str("</ul>");
    let dpo = if m.dpo_email.is_empty() {
        format!(
            "<p>{}</p>",
            l(
                "Il Comune non ha ancora indicato qui il contatto del proprio RPD: scrivi al Titolare agli indirizzi sopra.",
                "The municipality has not yet given its DPO's contact here: write to the controller at the addresses above.",
            )
        )
    } else {
        format!("<ul>{}</ul>", contact("Email", &m.dpo_email))
    };
    format!(
        "<h2 id=\"controller-{lang}\">{}</h2>{controller}<h2 id=\"dpo-{lang}\">{}</h2>{dpo}",
        l("Titolare del trattamento", "Data controller"),
        l("Responsabile della protezione dei dati (RPD/DPO)", "Data protection officer (DPO)"),
        lang = if it { "it" } else { "en" },
    )
}

/// The privacy notice's body in Italian (`it`) or English.
fn privacy_body(m: &Municipality, state: &AppState, it: bool) -> String {
    let kept = period(state.config.retention, it);
    let recordings = period(state.config.recording_retention, it);
    let citizen_login = period(Duration::from_secs(crate::api::citizen::CITIZEN_SESSION_SECS.unsigned_abs()), it);
    let name = esc(&m.name);
    let who = who(m, it);
    if it {
        format!(
            "<section class=\"panel\" aria-labelledby=\"privacy-title\">\
<h1 id=\"privacy-title\">Informativa sul trattamento dei dati personali</h1>\
<p class=\"lead\">Ai sensi dell'art. 13 del Regolamento (UE) 2016/679 (GDPR), {name} spiega quali dati tratta quando prenoti un appuntamento, partecipi a una videochiamata o segui una seduta pubblica, perché e per quanto tempo.</p>\
{who}\
<h2>Quali dati e perché</h2><ul>\
<li><strong>Prenotazione</strong>: nome, cognome, indirizzo email e quello che scrivi nei dettagli della richiesta, per fissare l'appuntamento, mandarti la conferma, il promemoria e i link per spostarlo o annullarlo.</li>\
<li><strong>Videochiamata</strong>: immagine e voce passano in diretta tra te e il personale del Comune; non vengono registrate. Videocamera e microfono si accendono solo dopo il tuo consenso nel browser e si spengono quando esci.</li>\
<li><strong>Documenti e messaggi</strong> scambiati nella stanza, per il servizio che hai chiesto.</li>\
<li><strong>Sedute del Consiglio e della Giunta</strong>: sono pubbliche; immagini e voci di chi interviene sono trasmesse in diretta, registrate e pubblicate nell'archivio delle sedute.</li>\
<li><strong>Dati tecnici</strong>: l'indirizzo IP e l'ora delle richieste, per la sicurezza del servizio (limiti contro gli abusi) e per far arrivare audio e video.</li>\
<li id=\"spid-cie\"><strong>Accesso con SPID o CIE (facoltativo)</strong>: per prenotare non serve accedere. Se scegli di farlo, la tua identità digitale ci comunica nome, cognome, codice fiscale ed email (se presente), che usiamo per compilare il modulo di prenotazione e per mostrarti le tue prenotazioni. Restano in un cookie tecnico di sessione nel tuo browser, che si cancella quando premi «Esci» e comunque dopo {citizen_login}; sul server non li registriamo. Della prenotazione che fai dopo l'accesso conserviamo, come per ogni prenotazione, nome, cognome ed email, e in più un codice ricavato dal codice fiscale (non il codice fiscale), che serve solo a ritrovarla in «Le mie prenotazioni». Il codice fiscale è conservato solo se scegli gli avvisi nell'app IO.</li>\
<li id=\"app-io\"><strong>Avvisi nell'app IO (facoltativi)</strong>: solo se lo scegli prenotando, inviamo alla piattaforma IO il tuo codice fiscale, che serve a recapitare i messaggi, e gli avvisi del tuo appuntamento (conferma, spostamenti, annullamento, promemoria) con ufficio, servizio, data, ora, modalità e codice della prenotazione, mai il tuo nome né i dettagli che hai scritto. Il codice fiscale serve solo a questo: è cancellato quando smetti di ricevere gli avvisi, quando l'appuntamento è annullato o è passato, e comunque insieme ai dati della prenotazione; il registro degli invii ne tiene solo una forma mascherata, per 30 giorni. Puoi smettere quando vuoi dalla pagina dell'appuntamento («Non ricevere più avvisi su IO»); le email arrivano comunque.</li></ul>\
<h2>Base giuridica</h2><p>Il trattamento è necessario per l'esecuzione di un compito di interesse pubblico o connesso all'esercizio di pubblici poteri di cui è investito il Comune (art. 6, par. 1, lett. e) del GDPR): per questo non ti chiediamo un consenso. Se non fornisci nome ed email non possiamo fissare l'appuntamento. L'accesso con SPID o CIE e gli avvisi nell'app IO sono facoltativi: li usiamo solo se li scegli.</p>\
<h2>Per quanto tempo</h2><ul>\
<li>Documenti e messaggi della chat: {kept} dalla condivisione, poi sono cancellati automaticamente.</li>\
<li>Registrazioni delle sedute pubbliche: {recordings} dalla seduta, poi sono cancellate automaticamente.</li>\
<li>Dati della prenotazione: per il tempo previsto dalle regole di conservazione degli atti del Comune; chiedi al Titolare o al RPD. Il codice che ti fa ritrovare le prenotazioni è cancellato insieme ad essi; il codice fiscale per gli avvisi nell'app IO anche prima, come detto sopra.</li>\
<li>Dati dell'accesso con SPID o CIE: solo nel cookie di sessione, fino a quando esci e al massimo {citizen_login}.</li></ul>\
<h2>Chi li vede</h2><p>Solo il personale del Comune incaricato del servizio. I dati restano sui server gestiti dal Comune o per suo conto nell'Unione europea e non sono ceduti a terzi, salvo quanto scegli tu: se chiedi gli avvisi nell'app IO, codice fiscale e avvisi sono trasmessi a PagoPA S.p.A., che gestisce la piattaforma IO, per recapitarteli; se accedi con SPID o CIE, l'accesso passa per il gestore dell'identità digitale che scegli. Questo sito non usa cookie di profilazione né strumenti di tracciamento e le sue pagine non contattano servizi di terze parti; nel browser conserva la lingua scelta, il cookie tecnico della sessione se accedi con SPID o CIE e, mentre accedi, nella scheda aperta, le scelte della prenotazione in corso (cancellate al ritorno).</p>\
<h2>I tuoi diritti</h2><p>Puoi chiedere al Titolare l'accesso ai tuoi dati, la rettifica, la cancellazione nei casi previsti, la limitazione e opporti al trattamento (artt. 15–21 del GDPR), scrivendo agli indirizzi sopra. Puoi anche proporre reclamo al Garante per la protezione dei dati personali.</p>\
</section>"
        )
    } else {
        format!(
            "<section class=\"panel\" lang=\"en\" aria-labelledby=\"privacy-title-en\">\
<h2 id=\"privacy-title-en\">Privacy notice (English)</h2>\
<p class=\"lead\">Under Article 13 of Regulation (EU) 2016/679 (GDPR), {name} explains which data it processes when you book an appointment, take part in a video call or follow a public session, why and for how long.</p>\
{who}\
<h2>Which data and why</h2><ul>\
<li><strong>Booking</strong>: first name, last name, email address and what you write in the request's details, to set the appointment and send you the confirmation, the reminder and the links to move or cancel it.</li>\
<li><strong>Video call</strong>: picture and voice travel live between you and the municipality's staff; they are not recorded. Camera and microphone start only after you allow them in the browser and stop when you leave.</li>\
<li><strong>Documents and messages</strong> shared in the room, for the service you asked for.</li>\
<li><strong>Council and executive sessions</strong> are public: pictures and voices of speakers are streamed live, recorded and published in the session archive.</li>\
<li><strong>Technical data</strong>: the IP address and time of requests, for the service's security (limits against abuse) and to deliver audio and video.</li>\
<li id=\"spid-cie-en\"><strong>Logging in with SPID or CIE (optional)</strong>: you do not need to log in to book. If you choose to, your digital identity gives us your first and last name, fiscal code and email (if it has one), which we use to fill in the booking form and to show you your bookings. They stay in a technical session cookie in your browser, deleted when you press «Log out» and in any case after {citizen_login}; the server does not record them. Of a booking you make after logging in we keep, as for every booking, the first and last name and the email, and also a code derived from the fiscal code (not the fiscal code itself), used only to find it again in «My bookings». The fiscal code is kept only if you choose notices in the IO app.</li>\
<li id=\"app-io-en\"><strong>Notices in the IO app (optional)</strong>: only if you choose it when booking, we send the IO platform your fiscal code, which addresses the messages, and your appointment's notices (confirmation, changes, cancellation, reminder) with the office, service, date, time, mode and booking code, never your name or the details you wrote. The fiscal code is used only for this: it is deleted when you stop the notices, when the appointment is cancelled or over, and in any case with the booking's data; the log of what was sent keeps only a masked form of it, for 30 days. You can stop whenever you like from the appointment's page («Stop the notices in IO»); the emails come anyway.</li></ul>\
<h2>Legal basis</h2><p>Processing is necessary for the performance of a task carried out in the public interest or in the exercise of official authority vested in the municipality (GDPR Article 6(1)(e)); that is why you are not asked for consent. Without a name and an email address an appointment cannot be made. Logging in with SPID or CIE and the notices in the IO app are optional: we use them only if you choose them.</p>\
<h2>How long</h2><ul>\
<li>Documents and chat messages: {kept} after they are shared, then deleted automatically.</li>\
<li>Recordings of public sessions: {recordings} after the session, then deleted automatically.</li>\
<li>Booking data: as long as the municipality's records retention rules require; ask the controller or the DPO. The code that finds your bookings again is deleted with them; the fiscal code for notices in the IO app earlier, as said above.</li>\
<li>Data of a SPID or CIE login: only in the session cookie, until you log out and for {citizen_login} at most.</li></ul>\
<h2>Who sees them</h2><p>Only the municipality's staff in charge of the service. The data stay on servers run by or for the municipality in the European Union and are not passed to third parties, except as you choose: if you ask for notices in the IO app, your fiscal code and the notices are sent to PagoPA S.p.A., which runs the IO platform, to deliver them; if you log in with SPID or CIE, the login goes through the digital identity provider you choose. This site uses no profiling cookies or trackers and its pages contact no third-party service; the browser keeps the chosen language, the technical session cookie if you log in with SPID or CIE and, while you log in, in the open tab, the choices of the booking under way (deleted when you come back).</p>\
<h2>Your rights</h2><p>You may ask the controller for access to your data, rectification, erasure where it applies, restriction, and object to processing (GDPR Articles 15–21), writing to the addresses above. You may also lodge a complaint with the Italian data protection authority (Garante per la protezione dei dati personali).</p>\
</section>"
        )
    }
}

/// A page of our own in the frame's page format (`server/src/page.rs`).
fn page_source(title: &str, title_key: &str, data_page: &str, main: &str) -> String {
    format!(
        "<head>\n<title data-i18n=\"{title_key}\">{title} — {{{{m.name}}}}</title>\n<link rel=\"stylesheet\" href=\"/web/shared/pages.css\">\n\
         <script type=\"module\" src=\"/web/citizen/home.js\"></script>\n</head>\n<body data-page=\"{data_page}\">\n\
         <main id=\"main\" tabindex=\"-1\" class=\"container legal\">\n{main}\n</main>\n</body>\n"
    )
}

/// `GET /privacy`: the notice in Italian, then in English.
pub async fn privacy(State(state): State<AppState>) -> Result<Response, HttpError> {
    let m = municipality(&state).await?;
    let main = format!("{}\n{}", privacy_body(&m, &state, true), privacy_body(&m, &state, false));
    let html = frame(&page_source("Informativa privacy", "privacy.doctitle", "privacy", &main), &m)
        .ok_or_else(|| HttpError::Internal("the page frame is missing".into()))?;
    html_page(StatusCode::OK, html)
}

/// `GET /note-legali`: legal notes and where the accessibility statement is.
pub async fn notes(State(state): State<AppState>) -> Result<Response, HttpError> {
    let m = municipality(&state).await?;
    let name = esc(&m.name);
    let statement = if m.accessibility_url.is_empty() {
        (
            "Il Comune pubblica la propria dichiarazione di accessibilità sul sito dell'AgID (form.agid.gov.it); il collegamento qui non è stato ancora configurato. Per segnalare un problema di accessibilità scrivi al Comune agli indirizzi indicati a piè di pagina.".to_owned(),
            "The municipality publishes its accessibility statement on AgID's site (form.agid.gov.it); the link here has not been configured yet. To report an accessibility problem, write to the municipality at the addresses in the footer.".to_owned(),
        )
    } else {
        let url = esc(&m.accessibility_url);
        (
            format!(
                "La <a href=\"{url}\">dichiarazione di accessibilità</a> del Comune, pubblicata secondo la Legge 4/2004 e le Linee guida AgID, indica lo stato di conformità di questo servizio e come segnalare un problema (meccanismo di feedback)."
            ),
            format!(
                "The municipality's <a href=\"{url}\">accessibility statement</a>, published under Law 4/2004 and AgID's guidelines, gives this service's conformance and how to report a problem (feedback mechanism)."
            ),
        )
    };
    let website =
        if m.website.is_empty() { String::new() } else { format!(" (<a href=\"{0}\">{0}</a>)", esc(&m.website)) };
    let main = format!(
        "<section class=\"panel\" aria-labelledby=\"legal-title\"><h1 id=\"legal-title\">Note legali</h1>\
<p>Questo servizio di uffici virtuali è gestito da {name}{website}. I contenuti pubblicati dal Comune sono riutilizzabili secondo la licenza indicata sul sito istituzionale, salvo dove diversamente indicato.</p>\
<p>Il software è Sportello, codice aperto ai sensi dell'art. 69 del Codice dell'amministrazione digitale; il suo catalogo è nel file publiccode.yml del progetto.</p>\
<h2 id=\"accessibilita\">Dichiarazione di accessibilità</h2><p>{}</p>\
<h2>Privacy</h2><p>Come sono trattati i tuoi dati: <a href=\"/privacy\">informativa privacy</a>.</p></section>\
<section class=\"panel\" lang=\"en\" aria-labelledby=\"legal-title-en\"><h2 id=\"legal-title-en\">Legal notes (English)</h2>\
<p>This virtual office service belongs to {name}{website}. Content the municipality publishes may be reused under the licence its institutional site states, unless otherwise noted.</p>\
<p>The software is Sportello, open source under Article 69 of the Italian Digital Administration Code; its catalogue entry is the project's publiccode.yml.</p>\
<h3 id=\"accessibility\">Accessibility statement</h3><p>{}</p>\
<h3>Privacy</h3><p>How your data are processed: <a href=\"/privacy\">privacy notice</a>.</p></section>",
        statement.0, statement.1
    );
    let html = frame(&page_source("Note legali", "legal.doctitle", "note-legali", &main), &m)
        .ok_or_else(|| HttpError::Internal("the page frame is missing".into()))?;
    html_page(StatusCode::OK, html)
}

/// `GET /crest`: the uploaded crest (already sanitised), 404 without one. An SVG gets a policy
/// of its own, so that even opened on its own it can run nothing and load nothing.
pub async fn crest(State(state): State<AppState>) -> Result<Response, HttpError> {
    let (content_type, bytes) = settings::crest(&state.store)
        .await
        .map_err(|e| HttpError::Internal(e.to_string()))?
        .ok_or(HttpError::NotFound)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // The URL carries the crest's fingerprint (`?v=`): a new crest is a new URL.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_people_say_them() {
        assert_eq!(period(Duration::from_secs(30 * 86_400), true), "30 giorni");
        assert_eq!(period(Duration::from_secs(365 * 86_400), true), "1 anno");
        assert_eq!(period(Duration::from_secs(730 * 86_400), false), "2 years");
        assert_eq!(period(Duration::from_secs(86_400), false), "1 day");
        assert_eq!(period(Duration::from_secs(7200), true), "2 ore");
    }
}
