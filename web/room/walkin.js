// A walk-in's ticket (docs/walkin.md): kept in the browser by the desk page (citizen/sportello.js)
// so that a citizen who closes the tab keeps their place, and read here by the room of a walk-in
// (`walkin-<id>`): while an official hands the citizen to a colleague (`transferring`) the room says
// so; when the walk-in is over the ticket is forgotten. Officials (host tokens) are left alone.

import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';
import { onLangChange, t } from '../shared/i18n.js';

/** The localStorage key of the ticket `{id, secret, office, office_name?}`. */
export const TICKET_KEY = 'sportello.walkin';
/** How often the citizen's pages ask for the ticket (each answer is a "seen" for the grace period). */
export const POLL_MS = 3000;
/** States after which the ticket means nothing any more. */
export const OVER = ['done', 'left', 'abandoned'];

/** The stored ticket, or null. */
export function loadTicket() {
  try {
    const v = JSON.parse(localStorage.getItem(TICKET_KEY) || 'null');
    if (v && typeof v.id === 'string' && v.id && typeof v.secret === 'string' && v.secret) return v;
  } catch { /* storage disabled or damaged */ }
  return null;
}

export function saveTicket(ticket) {
  try { localStorage.setItem(TICKET_KEY, JSON.stringify(ticket)); } catch { /* not kept: the page still works */ }
}

/** Forgets the stored ticket (only the one with `id`, when given: another tab may hold a newer one). */
export function forgetTicket(id) {
  try {
    if (id && loadTicket()?.id !== id) return;
    localStorage.removeItem(TICKET_KEY);
  } catch { /* nothing stored */ }
}

/** `GET /api/public/walkins/{id}` with the ticket's secret: the Ticket, or an ApiError. */
export function fetchTicket(ticket) {
  return api(`/api/public/walkins/${encodeURIComponent(ticket.id)}`, { headers: { 'X-Walkin-Secret': ticket.secret } });
}

/** An answer that says the ticket is no longer valid (unknown, over, or not ours). */
export function ticketGone(err) {
  return [401, 403, 404, 410].includes(err?.status);
}

/**
 * The room page's part (one call from app.js with the token's claims): in the citizen's own walk-in
 * room, polls the ticket and shows a polite banner while they are being transferred to a colleague.
 */
export function watchWalkin(claims) {
  if (!claims || claims.role === 'host' || !claims.room.startsWith('walkin-')) return;
  const ticket = loadTicket();
  if (!ticket || claims.room !== `walkin-${ticket.id}`) return;

  // The live region exists (empty) before anything is said in it, so the words are announced.
  const region = el('div', { id: 'walkin-banner', role: 'status', 'aria-live': 'polite' });
  const anchor = document.getElementById('alert')?.closest('.container');
  if (anchor) anchor.after(el('div', { class: 'container' }, region));
  else document.getElementById('main')?.prepend(region);

  let transferring = false;
  const render = () => {
    if (!transferring) {
      region.replaceChildren();
      return;
    }
    const text = t('walkin.transferring');
    const note = region.firstElementChild;
    if (note) {
      if (note.textContent !== text) note.textContent = text;
    } else {
      region.append(el('p', { class: 'note mt-3 mb-0', text }));
    }
  };
  onLangChange(render);

  let timer = null;
  const stop = () => clearTimeout(timer);
  const poll = async () => {
    let state = null;
    try {
      state = (await fetchTicket(ticket))?.state ?? null;
    } catch (e) {
      if (ticketGone(e)) {
        forgetTicket(ticket.id);
        transferring = false;
        render();
        return;
      }
      // No answer: ask again at the next turn.
    }
    if (OVER.includes(state)) {
      forgetTicket(ticket.id);
      transferring = false;
      render();
      return;
    }
    if (state) {
      transferring = state === 'transferring';
      render();
    }
    timer = setTimeout(poll, POLL_MS);
  };
  window.addEventListener('pagehide', stop);
  poll();
}
