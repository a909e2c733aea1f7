// The citizen's optional SPID/CIE login, for /prenota and /le-mie-prenotazioni: what the server
// offers (`/api/public/login-options`, `/api/public/appio`), who is logged in (`/api/citizen/me`,
// an HttpOnly session cookie this script never sees), the way in (`/auth/citizen/login?return=`)
// and out, and the refusal the way back may bring (`?login_error=<code>`). Booking never needs it.

import { addStrings, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { el } from '../shared/dom.js';

addStrings({
  it: {
    'id.login': 'Accedi con {label}',
    'id.label': 'SPID o CIE',
    'id.who': 'Hai effettuato l\'accesso come {name}.',
    'id.logout': 'Esci',
    'id.logged.out': 'Sei uscito dalla tua identità digitale.',
    'id.mine': 'Le mie prenotazioni',
    'id.newtab': '(si apre in una nuova scheda)',
    'id.error.invalid_fiscal_code': 'L\'accesso non è stato completato: l\'identità digitale non ci ha dato un codice fiscale valido. Puoi continuare senza accedere.',
    'id.error.provider': 'L\'accesso non è stato completato: il servizio di identità digitale non ha risposto o l\'accesso è stato annullato. Puoi riprovare più tardi o continuare senza accedere.',
    'id.error.expired': 'L\'accesso non è stato completato perché la richiesta è scaduta. Puoi riprovare o continuare senza accedere.',
    'id.error.unknown_user': 'L\'accesso non è stato completato: non è stato possibile riconoscere la tua identità digitale. Puoi continuare senza accedere.',
    'id.error.other': 'L\'accesso non è stato completato. Puoi riprovare più tardi o continuare senza accedere.',
    'id.cf.hidden': '({n} caratteri nascosti)',
  },
  en: {
    'id.login': 'Log in with {label}',
    'id.label': 'SPID or CIE',
    'id.who': 'You are logged in as {name}.',
    'id.logout': 'Log out',
    'id.logged.out': 'You have logged out of your digital identity.',
    'id.mine': 'My bookings',
    'id.newtab': '(opens in a new tab)',
    'id.error.invalid_fiscal_code': 'The login was not completed: the digital identity did not give us a valid fiscal code. You can go on without logging in.',
    'id.error.provider': 'The login was not completed: the digital identity service did not answer or the login was cancelled. You can try again later or go on without logging in.',
    'id.error.expired': 'The login was not completed because the request expired. You can try again or go on without logging in.',
    'id.error.unknown_user': 'The login was not completed: your digital identity could not be recognised. You can go on without logging in.',
    'id.error.other': 'The login was not completed. You can try again later or go on without logging in.',
    'id.cf.hidden': '({n} characters hidden)',
  },
});

const NO_LOGIN = { staff_sso: null, local_passwords: true, citizen_login: null };
const ERRORS = ['invalid_fiscal_code', 'provider', 'expired', 'unknown_user'];

/** What the server offers: `{staff_sso, local_passwords, citizen_login}` (nothing if it does not say). */
export async function loginOptions() {
  try {
    return { ...NO_LOGIN, ...(await api('/api/public/login-options')) };
  } catch {
    return NO_LOGIN;
  }
}

/** Whether App IO notices can be offered (`GET /api/public/appio`). */
export async function appioEnabled() {
  try {
    return (await api('/api/public/appio'))?.enabled === true;
  } catch {
    return false;
  }
}

/** The logged-in citizen `{given_name, family_name, email, fiscal_code}`, or null. */
export async function currentCitizen() {
  try {
    return await api('/api/citizen/me');
  } catch {
    return null;
  }
}

/** Ends the citizen's session (`POST /api/citizen/logout`); throws an ApiError when it fails. */
export async function logout() {
  await api('/api/citizen/logout', { method: 'POST', body: {} });
}

/** "Mario Rossi". */
export const fullName = (me) => `${me.given_name} ${me.family_name}`.trim();

/** The provider's name as the server calls it, «SPID o CIE» when it does not say. */
export const providerLabel = (login) => login?.label?.trim() || t('id.label');

/** The way in, back to `back` (this page, its query included) afterwards. */
export function loginHref(back = location.pathname + location.search) {
  return `/auth/citizen/login?return=${encodeURIComponent(back)}`;
}

/**
 * The «Accedi con …» link (a link: it leaves the page); `beforeLeave` runs first (to keep what
 * the citizen chose). Id `citizen-login`.
 */
export function loginLink(login, { beforeLeave, primary = false } = {}) {
  return el('a', {
    id: 'citizen-login', class: primary ? 'btn btn-primary' : 'btn', href: loginHref(),
    text: t('id.login', { label: providerLabel(login) }),
    onclick: () => beforeLeave?.(),
  });
}

/**
 * The refusal the way back brought (`?login_error=<code>`), taken out of the address so that a
 * reload or the next login does not repeat it: the code (unknown codes read as `other`), or ''.
 */
export function takeLoginError() {
  const url = new URL(location.href);
  const code = url.searchParams.get('login_error');
  if (code === null) return '';
  url.searchParams.delete('login_error');
  history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
  return ERRORS.includes(code) ? code : 'other';
}

/** The words for a refusal's code, in the page's language. */
export const loginErrorText = (code) => t(`id.error.${code}`);

/**
 * A fiscal code with its middle hidden: the first six letters (from the names, already on the
 * page) and the check character stay; birth date and place do not. Screen readers hear how many
 * characters are hidden, not a row of dots.
 */
export function maskedFiscalCode(code) {
  const cf = String(code || '').toUpperCase();
  if (cf.length < 8) return el('span', { text: cf });
  const hidden = cf.length - 7;
  return el('span', { class: 'masked-cf' },
    cf.slice(0, 6),
    el('span', { 'aria-hidden': 'true', text: '•'.repeat(hidden) }),
    el('span', { class: 'sr-only', text: ` ${t('id.cf.hidden', { n: hidden })} ` }),
    cf.slice(-1));
}

/**
 * «Hai effettuato l'accesso come …», a link to «Le mie prenotazioni» (in a new tab when
 * `mineInNewTab`, so a form keeps what was typed; none when `mine` is false) and «Esci».
 */
export function whoLine(me, { onLogout, mine = true, mineInNewTab = false } = {}) {
  return el('div', { class: 'note citizen-who', id: 'citizen-who' },
    el('p', { text: t('id.who', { name: fullName(me) }) }),
    el('p', { class: 'citizen-who-actions' },
      mine ? el('a', { href: '/le-mie-prenotazioni', id: 'mine-link', target: mineInNewTab ? '_blank' : null, rel: mineInNewTab ? 'noopener' : null },
        t('id.mine'), mineInNewTab ? [' ', el('span', { class: 'new-tab', text: t('id.newtab') })] : null) : null,
      el('button', { type: 'button', class: 'btn btn-small', id: 'citizen-logout', text: t('id.logout'), onclick: onLogout })));
}
