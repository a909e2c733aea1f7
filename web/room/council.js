// Council sessions (rooms `council-<id>`): the chair's and the councillors' panel, mounted by
// app.js next to the room view. It only sends `council.*` messages and renders `council.state`;
// the server decides everything (docs/signaling.md, "Council sessions").
//
// Accessibility: every control is a labelled <button>; floor changes and vote results are
// announced in a polite live region; the secret ballot is labelled as such everywhere.

import { addStrings, getLang, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';

const S = {
  it: {
    title: 'Seduta',
    notice: 'Questa seduta è trasmessa in diretta e registrata: chiunque può seguirla senza account e la registrazione sarà pubblicata nell\'archivio del Comune (art. 38 TUEL; indicazioni del Garante per la protezione dei dati personali). Il presidente può sospendere la diretta e la registrazione per un singolo punto. Non mostrare né dire dati sanitari o altri dati sensibili. Il microfono resta spento finché il presidente non ti dà la parola.',
    noticeOk: 'Ho capito',
    item: 'Punto in discussione',
    noItem: 'Nessun punto in discussione',
    floor: 'Ha la parola',
    nobody: 'nessuno',
    queue: 'Richieste di intervento',
    queueEmpty: 'Nessuna richiesta',
    ask: 'Chiedi la parola',
    withdraw: 'Ritira la richiesta',
    give: 'Dai la parola a {name}',
    take: 'Togli la parola',
    muteAll: 'Silenzia tutti',
    agenda: 'Ordine del giorno',
    goTo: 'Vai al punto: {title}',
    current: '(in discussione)',
    rollCall: 'Appello',
    rollStart: 'Avvia l\'appello',
    rollEnd: 'Chiudi l\'appello',
    rollOpen: 'Appello in corso: conferma la tua presenza.',
    present: 'Presente',
    youPresent: 'Presenza registrata.',
    quorum: 'Numero legale: {present} presenti su {members}, richiesti {required}',
    quorumYes: 'raggiunto',
    quorumNo: 'non raggiunto',
    vote: 'Votazione',
    voteOpenOpen: 'Apri votazione palese',
    voteOpenSecret: 'Apri votazione a scrutinio segreto',
    voteClose: 'Chiudi la votazione',
    secret: 'Scrutinio segreto: il voto non è associato al tuo nome.',
    open: 'Votazione palese: il voto è registrato con il tuo nome.',
    favourable: 'Favorevole',
    contrary: 'Contrario',
    abstained: 'Astenuto',
    cast: 'Voti espressi: {cast} su {eligible}',
    youVoted: 'Il tuo voto è stato registrato.',
    results: 'Esito: favorevoli {f}, contrari {c}, astenuti {a} — {outcome}',
    approved: 'approvato',
    rejected: 'respinto',
    floorTo: 'La parola passa a {name}.',
    floorNone: 'Nessuno ha la parola.',
    forced: 'Il tuo microfono è stato spento dal presidente.',
    minutes: 'Bozza di verbale',
    stream: 'Diretta pubblica',
    streamLive: 'In onda: il pubblico vede e sente la seduta.',
    streamSuspended: 'Sospesa: il pubblico vede «Trasmissione sospesa» e la registrazione è ferma.',
    streamOff: 'Stato della diretta non disponibile.',
    streamSuspend: 'Sospendi la diretta e la registrazione',
    streamResume: 'Riprendi la diretta e la registrazione',
    streamSuspendedAnnounce: 'Diretta e registrazione sospese.',
    streamResumedAnnounce: 'Diretta e registrazione riprese.',
    publicLink: 'Pagina pubblica della diretta',
    end: 'Termina la seduta',
    endConfirm: 'Terminare la seduta? La diretta e la registrazione si chiudono e non si potrà riprendere.',
    encoder: 'Encoder dell\'aula (WHIP)',
    encoderGet: 'Ottieni URL e token per l\'encoder',
    encoderUrl: 'URL WHIP',
    encoderToken: 'Token (Bearer)',
    encoderUntil: 'Valido fino a {when}. Consegnalo solo a chi gestisce l\'encoder dell\'aula: chi lo possiede può trasmettere.',
    encoderLogin: 'Per ottenere il token accedi all\'area riservata (/staff) con il tuo account di presidente in questo browser, poi riprova.',
    encoderForbidden: 'Solo il presidente della seduta o un amministratore può ottenere il token dell\'encoder.',
    encoderError: 'Non è stato possibile ottenere il token: riprova.',
  },
  en: {
    title: 'Session',
    notice: 'This session is streamed live and recorded: anyone can watch without an account and the recording will be published in the town\'s archive (art. 38 TUEL; Italian data protection authority guidance). The chair can suspend the stream and the recording for a single item. Do not show or mention health data or other sensitive data. Your microphone stays off until the chair gives you the floor.',
    noticeOk: 'I understand',
    item: 'Item under discussion',
    noItem: 'No item under discussion',
    floor: 'Has the floor',
    nobody: 'nobody',
    queue: 'Requests to speak',
    queueEmpty: 'No requests',
    ask: 'Ask to speak',
    withdraw: 'Withdraw the request',
    give: 'Give the floor to {name}',
    take: 'Take the floor back',
    muteAll: 'Mute everyone',
    agenda: 'Agenda',
    goTo: 'Go to item: {title}',
    current: '(under discussion)',
    rollCall: 'Roll call',
    rollStart: 'Start the roll call',
    rollEnd: 'Close the roll call',
    rollOpen: 'Roll call in progress: confirm you are present.',
    present: 'Present',
    youPresent: 'Presence recorded.',
    quorum: 'Quorum: {present} present of {members}, {required} required',
    quorumYes: 'reached',
    quorumNo: 'not reached',
    vote: 'Vote',
    voteOpenOpen: 'Open a vote by name',
    voteOpenSecret: 'Open a secret ballot',
    voteClose: 'Close the vote',
    secret: 'Secret ballot: your vote is not linked to your name.',
    open: 'Vote by name: your vote is recorded with your name.',
    favourable: 'In favour',
    contrary: 'Against',
    abstained: 'Abstain',
    cast: 'Votes cast: {cast} of {eligible}',
    youVoted: 'Your vote has been recorded.',
    results: 'Result: in favour {f}, against {c}, abstentions {a} — {outcome}',
    approved: 'approved',
    rejected: 'rejected',
    floorTo: '{name} now has the floor.',
    floorNone: 'Nobody has the floor.',
    forced: 'The chair turned your microphone off.',
    minutes: 'Minutes draft',
    stream: 'Public live stream',
    streamLive: 'On air: the public sees and hears the session.',
    streamSuspended: 'Suspended: the public sees «Broadcast suspended» and the recording is paused.',
    streamOff: 'Live stream state not available.',
    streamSuspend: 'Suspend the stream and the recording',
    streamResume: 'Resume the stream and the recording',
    streamSuspendedAnnounce: 'Stream and recording suspended.',
    streamResumedAnnounce: 'Stream and recording resumed.',
    publicLink: 'Public page of the live stream',
    end: 'End the session',
    endConfirm: 'End the session? The stream and the recording close and cannot be resumed.',
    encoder: 'Chamber encoder (WHIP)',
    encoderGet: 'Get the URL and token for the encoder',
    encoderUrl: 'WHIP URL',
    encoderToken: 'Token (Bearer)',
    encoderUntil: 'Valid until {when}. Give it only to whoever runs the chamber encoder: whoever holds it can broadcast.',
    encoderLogin: 'To get the token, log in to the staff area (/staff) with your chair account in this browser, then try again.',
    encoderForbidden: 'Only the session\'s chair or an administrator can get the encoder token.',
    encoderError: 'The token could not be obtained: try again.',
  },
};

// The panel's words, registered with the one runtime under `council.<key>`.
addStrings(Object.fromEntries(Object.entries(S).map(([lang, table]) =>
  [lang, Object.fromEntries(Object.entries(table).map(([key, text]) => [`council.${key}`, text]))])));

const tr = (key, params = {}) => t(`council.${key}`, params);

function button(label, onclick, extra = {}) {
  return el('button', { type: 'button', class: 'btn btn-small', onclick, ...extra }, label);
}

export class CouncilPanel {
  /** @param {{send: (msg: object) => void, selfId: string, role: string}} options */
  constructor({ send, selfId, role }) {
    this.send = (msg) => send(msg);
    this.selfId = selfId;
    this.isChair = role === 'host';
    this.canVote = role !== 'viewer';
    this.state = null;
    this.lastFloor = undefined;
    this.lastResult = null;
    this.voted = null;
    this.present = null;
    this.lastStream = undefined;
    /** The encoder credentials once fetched: {token, whip_url, expires_at} or {error}. */
    this.encoder = null;
    this.root = el('section', { class: 'council-panel', 'aria-labelledby': 'council-title' });
    this.live = el('p', { class: 'visually-hidden', 'aria-live': 'polite', 'aria-relevant': 'additions', role: 'log' });
    onLangChange(() => this.render());
  }

  mount(parent) {
    if (!document.querySelector('link[href="/web/room/council.css"]')) {
      document.head.append(el('link', { rel: 'stylesheet', href: '/web/room/council.css' }));
    }
    parent.prepend(this.root);
    parent.append(this.live);
    this.showNotice(parent);
    this.render();
  }

  /** The privacy notice, once per page: a dialog-like box that takes the focus. */
  showNotice(parent) {
    const box = el('div', { class: 'council-notice', role: 'region', 'aria-labelledby': 'council-notice-text', tabindex: '-1' });
    const text = el('p', { id: 'council-notice-text' }, tr('notice'));
    box.append(text, button(tr('noticeOk'), () => box.remove()));
    parent.prepend(box);
    box.focus();
  }

  /** Adds a message to the polite live region (additions are read out; the last three stay). */
  announce(text) {
    this.live.append(el('span', {}, text, ' '));
    while (this.live.childNodes.length > 3) this.live.firstChild.remove();
  }

  name(pid) {
    return this.state?.members?.find((m) => m.participant_id === pid)?.name ?? pid;
  }

  onForceMute() {
    this.announce(tr('forced'));
  }

  onState(state) {
    const floor = state.floor ?? null;
    if (this.lastFloor !== undefined && floor !== this.lastFloor) {
      this.announce(floor ? tr('floorTo', { name: this.nameIn(state, floor) }) : tr('floorNone'));
    }
    this.lastFloor = floor;
    if (this.lastStream !== undefined && state.stream && state.stream !== this.lastStream) {
      this.announce(state.stream === 'suspended' ? tr('streamSuspendedAnnounce') : tr('streamResumedAnnounce'));
    }
    this.lastStream = state.stream;
    const v = state.vote;
    if (v && v.open && this.voted && this.voted !== v.id) this.voted = null;
    if (v && !v.open && v.results && this.lastResult !== v.id) {
      if (this.lastResult !== null || this.state) this.announce(this.resultText(v));
      this.lastResult = v.id;
    }
    this.state = state;
    this.render();
  }

  nameIn(state, pid) {
    return state.members?.find((m) => m.participant_id === pid)?.name ?? pid;
  }

  resultText(v) {
    const r = v.results;
    return tr('results', { f: r.favourable, c: r.contrary, a: r.abstained, outcome: tr(r.outcome) });
  }

  /** The chair's controls of the public side: stream state, suspend/resume, end, link, encoder. */
  renderStream(root, s) {
    const box = el('div', { class: 'council-stream', role: 'group', 'aria-labelledby': 'council-stream-title' });
    box.append(el('h3', { id: 'council-stream-title' }, tr('stream')));
    const suspended = s.stream === 'suspended';
    box.append(el('p', { class: suspended ? 'council-stream-state suspended' : 'council-stream-state' },
      s.stream ? (suspended ? tr('streamSuspended') : tr('streamLive')) : tr('streamOff')));
    const row = el('div', { class: 'council-actions' });
    row.append(suspended
      ? button(tr('streamResume'), () => this.send({ type: 'council.stream_resume' }), { class: 'btn btn-small btn-primary' })
      : button(tr('streamSuspend'), () => this.send({ type: 'council.stream_suspend' })));
    row.append(button(tr('end'), () => {
      if (window.confirm(tr('endConfirm'))) this.send({ type: 'council.end' });
    }, { class: 'btn btn-small council-end' }));
    box.append(row);
    const path = `/live/${encodeURIComponent(s.session)}`;
    box.append(el('p', {}, el('strong', {}, `${tr('publicLink')}: `),
      el('a', { href: path, target: '_blank', rel: 'noopener' }, `${location.origin}${path}`)));
    box.append(el('h3', {}, tr('encoder')));
    const e = this.encoder;
    if (e && e.token) {
      const field = (id, label, value) => el('p', { class: 'council-field' },
        el('label', { for: id }, label), el('input', { id, type: 'text', readonly: true, value, spellcheck: 'false' }));
      box.append(field('council-whip-url', tr('encoderUrl'), e.whip_url), field('council-whip-token', tr('encoderToken'), e.token));
      box.append(el('p', {}, tr('encoderUntil', { when: new Date(e.expires_at * 1000).toLocaleString(getLang() === 'en' ? 'en-GB' : 'it-IT') })));
    } else {
      if (e && e.error) box.append(el('p', { role: 'alert', class: 'council-error' }, e.error));
      box.append(button(tr('encoderGet'), () => this.fetchEncoder(s.session)));
    }
    root.append(box);
  }

  async fetchEncoder(session) {
    // The staff session's cookie says who asks; the panel's own words say what went wrong.
    try {
      this.encoder = await api(`/api/council/sessions/${encodeURIComponent(session)}/encoder-token`, { method: 'POST' });
    } catch (e) {
      if (e.status === 401) this.encoder = { error: tr('encoderLogin') };
      else if (e.status === 403 || e.status === 404) this.encoder = { error: tr('encoderForbidden') };
      else this.encoder = { error: tr('encoderError') };
    }
    this.render();
    document.getElementById(this.encoder.token ? 'council-whip-url' : 'council-stream-title')?.focus();
  }

  render() {
    const s = this.state;
    const root = this.root;
    root.replaceChildren(el('h2', { id: 'council-title' }, s ? `${tr('title')}: ${s.title}` : tr('title')));
    if (!s) return;
    const item = s.items.find((i) => i.id === s.current_item);
    root.append(el('p', { class: 'council-item' }, el('strong', {}, `${tr('item')}: `), item ? item.title : tr('noItem')));
    root.append(el('p', { class: 'council-floor' }, el('strong', {}, `${tr('floor')}: `), s.floor ? this.name(s.floor) : tr('nobody')));
    if (this.isChair) this.renderStream(root, s);

    // The floor: councillors ask; the chair sees the queue and decides.
    const queued = s.queue.includes(this.selfId);
    if (!this.isChair && this.canVote && s.floor !== this.selfId) {
      root.append(queued
        ? button(tr('withdraw'), () => this.send({ type: 'council.withdraw' }))
        : button(tr('ask'), () => this.send({ type: 'council.request_floor' }), { class: 'btn btn-primary' }));
    }
    const queue = el('ol', { class: 'council-queue', 'aria-label': tr('queue') });
    for (const pid of s.queue) {
      queue.append(el('li', {}, this.name(pid), ' ', this.isChair
        ? button(tr('give', { name: this.name(pid) }), () => this.send({ type: 'council.give_floor', participant_id: pid }))
        : null));
    }
    root.append(el('h3', {}, tr('queue')), s.queue.length ? queue : el('p', {}, tr('queueEmpty')));
    if (this.isChair) {
      const row = el('div', { class: 'council-actions' });
      if (s.floor) row.append(button(tr('take'), () => this.send({ type: 'council.take_floor' })));
      row.append(button(tr('muteAll'), () => this.send({ type: 'council.mute_all' })));
      root.append(row);
      const agenda = el('ol', { class: 'council-agenda' });
      for (const i of s.items) {
        agenda.append(el('li', {}, i.title, ' ', i.id === s.current_item
          ? el('span', {}, tr('current'))
          : button(tr('goTo', { title: i.title }), () => this.send({ type: 'council.set_item', item_id: i.id }))));
      }
      root.append(el('h3', {}, tr('agenda')), agenda);
    }

    // Roll call and quorum.
    root.append(el('h3', {}, tr('rollCall')));
    const rc = s.roll_call;
    const q = s.quorum;
    root.append(el('p', { class: q.reached ? 'council-quorum ok' : 'council-quorum' },
      tr('quorum', { present: q.present, members: q.members, required: q.required }), ' — ',
      el('strong', {}, q.reached ? tr('quorumYes') : tr('quorumNo'))));
    if (rc && rc.open && this.canVote) {
      if (rc.present.includes(this.selfId)) root.append(el('p', {}, tr('youPresent')));
      else {
        root.append(el('p', {}, tr('rollOpen')));
        root.append(button(tr('present'), () => this.send({ type: 'council.present' }), { class: 'btn btn-primary' }));
      }
    }
    if (this.isChair) {
      root.append(rc && rc.open
        ? button(tr('rollEnd'), () => this.send({ type: 'council.roll_call_end' }))
        : button(tr('rollStart'), () => this.send({ type: 'council.roll_call_start' })));
    }

    // The vote.
    root.append(el('h3', {}, tr('vote')));
    const v = s.vote;
    if (v) {
      root.append(el('p', { class: v.secret ? 'council-secret' : '' }, el('strong', {}, v.secret ? tr('secret') : tr('open'))));
      if (v.open) {
        root.append(el('p', {}, tr('cast', { cast: v.cast, eligible: v.eligible.length })));
        const mine = v.voted.includes(this.selfId);
        if (mine) root.append(el('p', {}, tr('youVoted')));
        else if (this.canVote && v.eligible.includes(this.selfId)) {
          const group = el('div', { role: 'group', class: 'council-ballot', 'aria-label': v.secret ? tr('secret') : tr('open') });
          for (const choice of ['favourable', 'contrary', 'abstained']) {
            group.append(button(tr(choice), () => { this.voted = v.id; this.send({ type: 'council.vote', choice }); }));
          }
          root.append(group);
        }
        if (this.isChair) root.append(button(tr('voteClose'), () => this.send({ type: 'council.vote_close' })));
      } else if (v.results) {
        root.append(el('p', { class: 'council-result' }, this.resultText(v)));
        if (v.results.by_name.length) {
          const list = el('ul', {});
          for (const b of v.results.by_name) list.append(el('li', {}, `${this.name(b.participant_id)}: ${tr(b.choice)}`));
          root.append(list);
        }
      }
    }
    if (this.isChair && !(v && v.open) && s.current_item) {
      const row = el('div', { class: 'council-actions' });
      row.append(button(tr('voteOpenOpen'), () => this.send({ type: 'council.vote_open', item_id: s.current_item, secret: false })));
      row.append(button(tr('voteOpenSecret'), () => this.send({ type: 'council.vote_open', item_id: s.current_item, secret: true })));
      root.append(row);
      root.append(el('p', {}, el('a', { href: `/consiglio/${encodeURIComponent(s.session)}/verbale`, target: '_blank', rel: 'noopener' }, tr('minutes'))));
    }
  }
}
