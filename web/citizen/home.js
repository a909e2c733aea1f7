// The home page (/) and the server-written privacy notice and legal notes (/privacy, /note-legali):
// their words, the language switch, and on the home page the form where a pasted link or booking
// code leads on, and «Le mie prenotazioni» when the server offers the citizens' SPID/CIE login. No
// room code: the room (media, signaling, its views) is loaded by /join alone.

import { initPage, t } from '../shared/i18n.js';
import { el } from '../shared/dom.js';
import './strings.js';
// Reading a pasted join link needs only the token parser, which has no dependencies.
import { destinationFromInput } from '../room/token.js';
import { loginOptions } from './identity.js';

const $ = (id) => document.getElementById(id);

function initLanding() {
  const form = $('paste-form');
  if (!form) return;
  const input = $('paste-input');
  const error = $('paste-error');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const destination = destinationFromInput(input.value);
    if (!destination) {
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    // Always our own origin: a pasted link cannot send the user elsewhere.
    location.assign(destination);
  });
  input.addEventListener('input', () => {
    error.hidden = true;
    input.removeAttribute('aria-invalid');
  });
}

/** The hero's way to «Le mie prenotazioni», only where a citizen can log in to see them. */
async function offerMine() {
  const actions = document.querySelector('.hero .actions');
  if (!actions || !(await loginOptions()).citizen_login) return;
  actions.append(' ', el('a', { class: 'btn', href: '/le-mie-prenotazioni', id: 'mine-link', 'data-i18n': 'landing.mine', text: t('landing.mine') }));
}

initPage();
initLanding();
offerMine();
