// The sign-in section of /staff/admin (docs/identity.md): staff single sign-on through the
// municipality's directory, citizens' SPID/CIE through an OIDC gateway, and whether staff may still
// use passwords. Contract: server/src/api/identity.rs (`/api/admin/identity`). Secrets are
// write-only: the server says whether one is stored, never what it is.
//
// Loaded by admin.html before admin.js, so that its words are in the catalog when the page is
// translated; it fills the section itself once the settings answer (only an administrator's do).

import { addStrings, applyI18n, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, wireCopy } from './common.js';

addStrings({
  it: {
    'idp.title': 'Accesso e identità',
    'idp.intro': 'Il personale può accedere con l\'account del Comune (Active Directory/Entra ID, Keycloak, Google…) tramite OpenID Connect; i cittadini, se lo si attiva, con SPID o CIE attraverso un gateway OpenID Connect (ad esempio IAM Proxy Italia). Sportello non conserva altre password del personale che accede così.',
    'idp.redirect': 'Indirizzo di ritorno (redirect URI) da registrare presso il fornitore',
    'idp.redirect.help': 'Lo stesso per il personale e per i cittadini. Per l\'uscita, registra anche l\'indirizzo della pagina del personale (/staff).',
    'idp.local': 'Accesso con password per il personale',
    'idp.local.help': 'Spento: funzionari e consiglieri accedono solo con l\'account del Comune; gli amministratori possono sempre usare la password, per entrare anche quando il sistema di identità non risponde.',
    'idp.staff': 'Accesso unico (SSO) del personale',
    'idp.staff.on': 'Attiva l\'accesso con l\'account del Comune',
    'idp.citizen': 'Accesso dei cittadini con SPID o CIE',
    'idp.citizen.on': 'Attiva l\'accesso dei cittadini',
    'idp.citizen.help': 'Il codice fiscale arriva nell\'attributo https://attributes.eid.gov.it/fiscal_number; non viene salvato all\'accesso. Prenotare senza accedere resta possibile.',
    'idp.issuer': 'Emittente (issuer)',
    'idp.issuer.help': 'https://…, esattamente come lo scrive il documento di discovery del fornitore.',
    'idp.client_id': 'Identificativo del client (client ID)',
    'idp.secret': 'Segreto del client (client secret)',
    'idp.secret.set': 'Un segreto è salvato: lascia vuoto per non cambiarlo.',
    'idp.secret.unset': 'Nessun segreto salvato (client pubblico, solo PKCE).',
    'idp.label': 'Testo del pulsante «Accedi con …»',
    'idp.role_claim': 'Attributo con gruppi o ruoli',
    'idp.role_claim.help': 'Ad esempio groups, roles o realm_access.roles.',
    'idp.admin_values': 'Valori per gli amministratori',
    'idp.official_values': 'Valori per i funzionari',
    'idp.councillor_values': 'Valori per i consiglieri',
    'idp.values.help': 'Separati da virgole, scritti come li scrive il sistema di identità. Chi non ne ha nessuno non può accedere.',
    'idp.offices_claim': 'Attributo con gli uffici (facoltativo)',
    'idp.offices_claim.help': 'Vuoto: gli uffici li assegni tu. Impostato: a ogni accesso l\'appartenenza agli uffici elencati qui sotto segue il sistema di identità.',
    'idp.map': 'Corrispondenza valori → uffici',
    'idp.map.value': 'Valore',
    'idp.map.office': 'Ufficio',
    'idp.map.add': 'Aggiungi una corrispondenza',
    'idp.map.remove': 'Rimuovi',
    'idp.map.none': 'Nessuna corrispondenza.',
    'idp.saved': 'Impostazioni di accesso salvate.',
  },
  en: {
    'idp.title': 'Sign-in and identity',
    'idp.intro': 'Staff can sign in with the municipality\'s account (Active Directory/Entra ID, Keycloak, Google…) through OpenID Connect; citizens, if switched on, with SPID or CIE through an OpenID Connect gateway (such as IAM Proxy Italia). Sportello keeps no other password for staff who sign in this way.',
    'idp.redirect': 'Redirect URI to register with the provider',
    'idp.redirect.help': 'The same for staff and citizens. For logout, also register the staff page\'s address (/staff).',
    'idp.local': 'Password sign-in for staff',
    'idp.local.help': 'Off: officials and councillors sign in with the municipality\'s account only; administrators can always use their password, to get in even when the identity system does not answer.',
    'idp.staff': 'Staff single sign-on (SSO)',
    'idp.staff.on': 'Switch on sign-in with the municipality\'s account',
    'idp.citizen': 'Citizens\' sign-in with SPID or CIE',
    'idp.citizen.on': 'Switch on citizens\' sign-in',
    'idp.citizen.help': 'The fiscal code comes in the attribute https://attributes.eid.gov.it/fiscal_number; it is not saved at sign-in. Booking without signing in stays possible.',
    'idp.issuer': 'Issuer',
    'idp.issuer.help': 'https://…, exactly as the provider\'s discovery document writes it.',
    'idp.client_id': 'Client ID',
    'idp.secret': 'Client secret',
    'idp.secret.set': 'A secret is saved: leave empty to keep it.',
    'idp.secret.unset': 'No secret saved (public client, PKCE only).',
    'idp.label': 'Text of the «Sign in with …» button',
    'idp.role_claim': 'Claim with groups or roles',
    'idp.role_claim.help': 'For example groups, roles or realm_access.roles.',
    'idp.admin_values': 'Values for administrators',
    'idp.official_values': 'Values for officials',
    'idp.councillor_values': 'Values for councillors',
    'idp.values.help': 'Comma-separated, written as the identity system writes them. Whoever has none cannot sign in.',
    'idp.offices_claim': 'Claim with the offices (optional)',
    'idp.offices_claim.help': 'Empty: you assign offices. Set: at every sign-in, membership of the offices listed below follows the identity system.',
    'idp.map': 'Values → offices',
    'idp.map.value': 'Value',
    'idp.map.office': 'Office',
    'idp.map.add': 'Add a mapping',
    'idp.map.remove': 'Remove',
    'idp.map.none': 'No mappings.',
    'idp.saved': 'Sign-in settings saved.',
  },
});

const $ = (id) => document.getElementById(id);

let settings = null;
let offices = [];
/** Rows of the office map as edited: [{value, office}]. */
let mapRows = [];

function list(text) {
  return text.split(',').map((v) => v.trim()).filter(Boolean);
}

function secretHelp(id, isSet) {
  $(id).textContent = t(isSet ? 'idp.secret.set' : 'idp.secret.unset');
}

function readMap() {
  mapRows = [...$('idp-map').querySelectorAll('.idp-map-row')].map((row) => ({
    value: row.querySelector('input').value,
    office: row.querySelector('select').value,
  }));
}

function renderMap() {
  const box = $('idp-map');
  if (!mapRows.length) {
    box.replaceChildren(el('p', { class: 'help', text: t('idp.map.none') }));
    return;
  }
  box.replaceChildren(...mapRows.map((row, i) => {
    const valueId = `idp-map-value-${i}`;
    const officeId = `idp-map-office-${i}`;
    return el('div', { class: 'idp-map-row inline' },
      el('div', { class: 'field' },
        el('label', { for: valueId, text: t('idp.map.value') }),
        el('input', { id: valueId, type: 'text', maxlength: 200, value: row.value, autocomplete: 'off', spellcheck: 'false' })),
      el('div', { class: 'field' },
        el('label', { for: officeId, text: t('idp.map.office') }),
        el('select', { id: officeId, value: row.office },
          offices.map((o) => el('option', { value: o.id, text: o.name })))),
      el('button', {
        type: 'button',
        class: 'btn btn-small',
        text: t('idp.map.remove'),
        'aria-label': `${t('idp.map.remove')}: ${row.value || t('idp.map.value')}`,
        onclick: () => {
          readMap();
          mapRows.splice(i, 1);
          renderMap();
          $('idp-map-add').focus();
        },
      }));
  }));
}

function toggleGroups() {
  $('idp-staff-fields').hidden = !$('idp-staff-on').checked;
  $('idp-citizen-fields').hidden = !$('idp-citizen-on').checked;
}

function render() {
  const s = settings;
  $('idp-redirect').value = s.redirect_uri;
  $('idp-local').checked = s.local_passwords;
  const staff = s.staff_oidc;
  $('idp-staff-on').checked = Boolean(staff);
  $('idp-staff-issuer').value = staff?.issuer ?? '';
  $('idp-staff-client').value = staff?.client_id ?? '';
  $('idp-staff-secret').value = '';
  secretHelp('idp-staff-secret-help', staff?.client_secret_set);
  $('idp-staff-label').value = staff?.label ?? '';
  $('idp-staff-role-claim').value = staff?.role_claim ?? 'groups';
  $('idp-staff-admins').value = (staff?.admin_values ?? []).join(', ');
  $('idp-staff-officials').value = (staff?.official_values ?? []).join(', ');
  $('idp-staff-councillors').value = (staff?.councillor_values ?? []).join(', ');
  $('idp-staff-offices-claim').value = staff?.offices_claim ?? '';
  mapRows = Object.entries(staff?.office_map ?? {}).map(([value, office]) => ({ value, office }));
  renderMap();
  const citizen = s.citizen_oidc;
  $('idp-citizen-on').checked = Boolean(citizen);
  $('idp-citizen-issuer').value = citizen?.issuer ?? '';
  $('idp-citizen-client').value = citizen?.client_id ?? '';
  $('idp-citizen-secret').value = '';
  secretHelp('idp-citizen-secret-help', citizen?.client_secret_set);
  $('idp-citizen-label').value = citizen?.label ?? '';
  toggleGroups();
}

function body() {
  readMap();
  const secret = (id) => $(id).value.trim() || undefined;
  return {
    local_passwords: $('idp-local').checked,
    staff_oidc: $('idp-staff-on').checked ? {
      issuer: $('idp-staff-issuer').value.trim(),
      client_id: $('idp-staff-client').value.trim(),
      client_secret: secret('idp-staff-secret'),
      label: $('idp-staff-label').value.trim(),
      role_claim: $('idp-staff-role-claim').value.trim(),
      admin_values: list($('idp-staff-admins').value),
      official_values: list($('idp-staff-officials').value),
      councillor_values: list($('idp-staff-councillors').value),
      offices_claim: $('idp-staff-offices-claim').value.trim(),
      office_map: Object.fromEntries(mapRows.filter((r) => r.value.trim()).map((r) => [r.value.trim(), r.office])),
    } : null,
    citizen_oidc: $('idp-citizen-on').checked ? {
      issuer: $('idp-citizen-issuer').value.trim(),
      client_id: $('idp-citizen-client').value.trim(),
      client_secret: secret('idp-citizen-secret'),
      label: $('idp-citizen-label').value.trim(),
    } : null,
  };
}

/** The field a refusal names, as far as its code tells. */
function fieldOf(code) {
  const staffOn = $('idp-staff-on').checked;
  return {
    invalid_issuer: staffOn ? $('idp-staff-issuer') : $('idp-citizen-issuer'),
    unknown_office: $('idp-map-add'),
  }[code] ?? null;
}

async function init() {
  try {
    settings = await api('/api/admin/identity');
  } catch {
    return; // not an administrator (admin.js says so), or signed out
  }
  offices = await api('/api/admin/offices').catch(() => []);
  applyI18n($('identity-section'));
  wireCopy($('idp-redirect-copy'), $('idp-redirect'));
  $('idp-staff-on').addEventListener('change', toggleGroups);
  $('idp-citizen-on').addEventListener('change', toggleGroups);
  $('idp-map-add').addEventListener('click', () => {
    readMap();
    mapRows.push({ value: '', office: offices[0]?.id ?? '' });
    renderMap();
    $(`idp-map-value-${mapRows.length - 1}`)?.focus();
  });
  $('identity-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors($('identity-form'));
    try {
      settings = await api('/api/admin/identity', { method: 'PUT', body: body() });
    } catch (e) {
      if (e.status === 401) {
        location.assign('/staff');
        return;
      }
      const field = fieldOf(e.code);
      showError($('identity-error'), e.message, field ? [field] : []);
      (field ?? $('identity-error')).focus?.();
      return;
    }
    render();
    announce(t('idp.saved'));
  });
  render();
  onLangChange(() => {
    readMap();
    renderMap();
    secretHelp('idp-staff-secret-help', settings?.staff_oidc?.client_secret_set);
    secretHelp('idp-citizen-secret-help', settings?.citizen_oidc?.client_secret_set);
  });
}

init();
