// /staff/admin: administrators manage offices, services, staff and the municipality's settings.
// Contract: server/src/api/admin.rs. Every server error is shown next to the form that caused it.

import { initPage, onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, labelCells, wireCopy } from './common.js';
import { initWebhooks } from './webhooks.js';
import { initAppio } from './appio.js';

const $ = (id) => document.getElementById(id);
const RANGE = /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/;

let offices = [];
let services = [];
let users = [];
/** Ids being edited (null = creating). */
const editing = { office: null, service: null, user: null };
let me = null;

// --- shared ----------------------------------------------------------------------------------------

function actionButtons(name, onEdit, onDelete, extra = []) {
  return el('div', { class: 'row-actions' },
    el('button', { type: 'button', class: 'btn btn-small', text: t('admin.edit'), 'aria-label': `${t('admin.edit')}: ${name}`, onclick: onEdit }),
    ...extra,
    onDelete ? el('button', { type: 'button', class: 'btn btn-small btn-danger', text: t('admin.delete'), 'aria-label': `${t('admin.delete')}: ${name}`, onclick: onDelete }) : null);
}

/** A server error (an ApiError) next to its form; the field it names (if any) is marked and focused. */
function formError(box, error, fieldsByCode = {}) {
  if (error.status === 401) {
    location.assign('/staff');
    return;
  }
  const field = fieldsByCode[error.code] ?? null;
  showError(box, error.message, field ? [field] : []);
  (field ?? box).focus?.();
}

function checkboxes(container, name, items, checked, label) {
  if (!items.length) return false;
  container.replaceChildren(...items.map((item) => {
    const id = `${name}-${item.id}`;
    return el('div', { class: 'check' },
      el('input', { type: 'checkbox', id, value: item.id, checked: checked.includes(item.id) }),
      el('label', { for: id, text: label(item) }));
  }));
  return true;
}

const checked = (container) => [...container.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);

async function del(kind, path, name) {
  if (!confirm(t('admin.confirm.delete', { name }))) return;
  try {
    await api(path, { method: 'DELETE' });
  } catch (e) {
    formError($(`${kind}-error`), e);
    return;
  }
  announce(t('admin.deleted'));
  await loadAll();
}

// --- offices ---------------------------------------------------------------------------------------

/** Seven day fields of "HH:MM-HH:MM" ranges in `#<prefix>` (opening hours, desk hours). */
function hoursInputs(prefix, values = []) {
  $(prefix).replaceChildren(...[0, 1, 2, 3, 4, 5, 6].map((d) => el('div', { class: 'field' },
    el('label', { for: `${prefix}-${d}`, text: t('day.' + d) }),
    el('input', {
      // An empty day is a closed day: the placeholder says so rather than showing sample hours.
      type: 'text', id: `${prefix}-${d}`, value: (values[d] ?? []).join(', '), placeholder: t('off.closed'),
      autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${prefix}-help`,
    }))));
}

/**
 * "08:30-12:30, 14:30-16:30" per day → seven arrays; checked here for a precise message per day.
 * Null (the field marked and focused) when a range is not "HH:MM-HH:MM".
 */
function readHours(prefix, messageKey) {
  const hours = [];
  for (let d = 0; d < 7; d++) {
    const input = $(`${prefix}-${d}`);
    const ranges = input.value.split(/[,;]/).map((s) => s.replace(/\s+/g, '').replace(/[–—]/g, '-')).filter(Boolean);
    if (ranges.some((r) => !RANGE.test(r))) {
      showError($('office-error'), t(messageKey, { day: t('day.' + d) }), [input]);
      input.focus();
      return null;
    }
    hours.push(ranges);
  }
  return hours;
}

function renderOffices() {
  const tbody = $('offices-table').querySelector('tbody');
  const nameOf = (id) => users.find((u) => u.id === id)?.display_name ?? id;
  tbody.replaceChildren(...offices.map((o) => el('tr', { dataset: { officeId: o.id } },
    el('th', { scope: 'row', text: o.name }),
    el('td', { text: o.address }),
    el('td', { text: o.member_ids.map(nameOf).join(', ') }),
    el('td', {}, actionButtons(o.name, () => editOffice(o), () => del('office', `/api/admin/offices/${encodeURIComponent(o.id)}`, o.name))))));
  if (!offices.length) tbody.append(el('tr', {}, el('td', { colspan: 4, text: t('admin.none') })));
  labelCells($('offices-table'));
}

function fillOfficeForm(o) {
  editing.office = o?.id ?? null;
  clearErrors($('office-form'));
  $('office-form-title').textContent = o ? t('admin.editing', { name: o.name }) : t('off.new');
  $('office-name').value = o?.name ?? '';
  $('office-description').value = o?.description ?? '';
  $('office-address').value = o?.address ?? '';
  $('office-email').value = o?.email ?? '';
  $('office-phone').value = o?.phone ?? '';
  hoursInputs('office-hours', o?.opening_hours ?? [['08:30-12:30'], ['08:30-12:30'], ['08:30-12:30'], ['08:30-12:30'], ['08:30-12:30'], [], []]);
  // A new office has no video desk until its hours are given.
  hoursInputs('office-desk-hours', o?.desk_hours ?? []);
  renderOfficeMembers(o?.member_ids ?? []);
}

function renderOfficeMembers(ids) {
  const staff = users.filter((u) => u.active);
  if (!checkboxes($('office-members'), 'member', staff, ids, (u) => `${u.display_name} (${t('role.' + u.role)})`)) {
    $('office-members').replaceChildren(el('p', { class: 'help', text: t('off.members.none') }));
  }
}

function renderServiceOffices(ids) {
  if (!checkboxes($('service-offices'), 'svc-office', offices, ids, (o) => o.name)) {
    $('service-offices').replaceChildren(el('p', { class: 'help', text: t('svc.offices.none') }));
  }
}

function editOffice(o) {
  fillOfficeForm(o);
  $('office-form-title').focus();
}

function wireOffices() {
  $('office-reset').addEventListener('click', () => { fillOfficeForm(null); $('office-form-title').focus(); });
  $('office-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = $('office-form');
    clearErrors(form);
    const hours = readHours('office-hours', 'off.hours.invalid');
    if (!hours) return;
    const deskHours = readHours('office-desk-hours', 'off.desk.invalid');
    if (!deskHours) return;
    const body = {
      name: $('office-name').value, description: $('office-description').value, address: $('office-address').value,
      email: $('office-email').value, phone: $('office-phone').value, opening_hours: hours, desk_hours: deskHours,
      member_ids: checked($('office-members')),
    };
    try {
      if (editing.office) await api(`/api/admin/offices/${encodeURIComponent(editing.office)}`, { method: 'PUT', body });
      else await api('/api/admin/offices', { method: 'POST', body });
    } catch (e) {
      formError($('office-error'), e, {
        invalid_field: $('office-name'), invalid_opening_hours: $('office-hours-0'), invalid_desk_hours: $('office-desk-hours-0'),
      });
      return;
    }
    announce(t('admin.saved'));
    await loadAll();
    fillOfficeForm(null);
    $('offices-title').focus();
  });
}

// --- services --------------------------------------------------------------------------------------

const modesLabel = (m) => ({ both: t('svc.modes.both'), video: t('mode.video'), in_person: t('mode.in_person') }[m] ?? m);

function renderServices() {
  const tbody = $('services-table').querySelector('tbody');
  const nameOf = (id) => offices.find((o) => o.id === id)?.name ?? id;
  tbody.replaceChildren(...services.map((s) => el('tr', { dataset: { serviceId: s.id } },
    el('th', { scope: 'row', text: s.name }),
    el('td', { text: String(s.duration_minutes) }),
    el('td', { text: modesLabel(s.modes) }),
    el('td', { text: s.office_ids.map(nameOf).join(', ') }),
    el('td', {}, actionButtons(s.name, () => editService(s), () => del('service', `/api/admin/services/${encodeURIComponent(s.id)}`, s.name))))));
  if (!services.length) tbody.append(el('tr', {}, el('td', { colspan: 5, text: t('admin.none') })));
  labelCells($('services-table'));
}

function fillServiceForm(s) {
  editing.service = s?.id ?? null;
  clearErrors($('service-form'));
  $('service-form-title').textContent = s ? t('admin.editing', { name: s.name }) : t('svc.new');
  $('service-name').value = s?.name ?? '';
  $('service-description').value = s?.description ?? '';
  $('service-duration').value = s?.duration_minutes ?? 30;
  $('service-bring').value = s?.what_to_bring ?? '';
  $('service-modes').value = s?.modes ?? 'both';
  renderServiceOffices(s?.office_ids ?? []);
}

function editService(s) {
  fillServiceForm(s);
  $('service-form-title').focus();
}

function wireServices() {
  $('service-reset').addEventListener('click', () => { fillServiceForm(null); $('service-form-title').focus(); });
  $('service-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors($('service-form'));
    const body = {
      name: $('service-name').value, description: $('service-description').value,
      duration_minutes: Number($('service-duration').value), what_to_bring: $('service-bring').value,
      modes: $('service-modes').value, office_ids: checked($('service-offices')),
    };
    try {
      if (editing.service) await api(`/api/admin/services/${encodeURIComponent(editing.service)}`, { method: 'PUT', body });
      else await api('/api/admin/services', { method: 'POST', body });
    } catch (e) {
      formError($('service-error'), e, { invalid_field: $('service-name'), invalid_duration: $('service-duration') });
      return;
    }
    announce(t('admin.saved'));
    await loadAll();
    fillServiceForm(null);
    $('services-title').focus();
  });
}

// --- staff -----------------------------------------------------------------------------------------

function userState(u) {
  if (!u.active) return t('usr.state.inactive');
  return u.has_password ? t('usr.state.active') : t('usr.state.nopw');
}

function showSetupLink(url, message) {
  $('user-link').value = url;
  $('user-link-box').hidden = false;
  $('user-link-title').focus();
  announce(message);
}

function renderUsers() {
  const tbody = $('users-table').querySelector('tbody');
  tbody.replaceChildren(...users.map((u) => {
    const link = el('button', {
      type: 'button', class: 'btn btn-small', text: t('usr.link'), 'aria-label': t('usr.link.label', { name: u.display_name }),
      onclick: async () => {
        let link;
        try {
          link = await api(`/api/admin/users/${encodeURIComponent(u.id)}/setup-link`, { method: 'POST', body: {} });
        } catch (e) {
          formError($('user-error'), e);
          return;
        }
        showSetupLink(link.setup_url, t('usr.link.title'));
      },
    });
    return el('tr', { dataset: { userId: u.id } },
      el('th', { scope: 'row', text: u.display_name }),
      el('td', { text: u.email }),
      el('td', { text: t('role.' + u.role) }),
      el('td', { text: userState(u) }),
      el('td', {}, actionButtons(u.display_name, () => editUser(u), null, [link])));
  }));
  labelCells($('users-table'));
}

function fillUserForm(u) {
  editing.user = u?.id ?? null;
  clearErrors($('user-form'));
  $('user-form-title').textContent = u ? t('admin.editing', { name: u.display_name }) : t('usr.new');
  $('user-email').value = u?.email ?? '';
  // The email identifies the account: it is set at creation only.
  $('user-email').readOnly = Boolean(u);
  $('user-name').value = u?.display_name ?? '';
  $('user-role').value = u?.role ?? 'official';
  $('user-active').checked = u?.active ?? true;
  $('user-active').disabled = !u;
  $('user-fiscal-code').value = u?.fiscal_code ?? '';
}

function editUser(u) {
  fillUserForm(u);
  $('user-form-title').focus();
}

function wireUsers() {
  wireCopy($('user-link-copy'), $('user-link'));
  $('user-reset').addEventListener('click', () => { fillUserForm(null); $('user-form-title').focus(); });
  $('user-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors($('user-form'));
    const fields = {
      invalid_email: $('user-email'), email_taken: $('user-email'), invalid_field: $('user-name'), self_demotion: $('user-role'),
      invalid_fiscal_code: $('user-fiscal-code'),
    };
    const fiscalCode = $('user-fiscal-code').value.trim();
    if (editing.user) {
      try {
        await api(`/api/admin/users/${encodeURIComponent(editing.user)}`, {
          method: 'PUT',
          body: { display_name: $('user-name').value, role: $('user-role').value, active: $('user-active').checked, fiscal_code: fiscalCode },
        });
      } catch (e) {
        formError($('user-error'), e, fields);
        return;
      }
      announce(t('admin.saved'));
      await loadAll();
      fillUserForm(null);
      $('users-title').focus();
      return;
    }
    let created;
    try {
      created = await api('/api/admin/users', {
        method: 'POST',
        body: { email: $('user-email').value.trim(), display_name: $('user-name').value, role: $('user-role').value, fiscal_code: fiscalCode },
      });
    } catch (e) {
      formError($('user-error'), e, fields);
      return;
    }
    await loadAll();
    fillUserForm(null);
    showSetupLink(created.setup_url, t('usr.created'));
  });
}

// --- settings --------------------------------------------------------------------------------------

// The identity fields: input id → the settings' JSON name.
const IDENTITY = {
  'set-owner': 'owner_name', 'set-owner-url': 'owner_url', 'set-website': 'website', 'set-address': 'address',
  'set-phone': 'phone', 'set-email': 'email', 'set-pec': 'pec', 'set-vat': 'vat_number',
  'set-controller': 'controller', 'set-dpo': 'dpo_email', 'set-a11y': 'accessibility_url',
};

function fillSettings(s) {
  $('set-name').value = s.municipality_name;
  $('set-patron').value = s.patron_day;
  $('set-notice').value = s.min_notice_minutes;
  $('set-horizon').value = s.horizon_days;
  for (const [id, key] of Object.entries(IDENTITY)) $(id).value = s[key] ?? '';
  showCrest(s.has_crest);
}

// The crest's preview asks the server again each time (a new file is a new picture).
function showCrest(present) {
  const img = $('crest-preview');
  img.hidden = !present;
  if (present) img.src = `/crest?v=${Date.now()}`;
  $('crest-remove').hidden = !present;
}

function wireCrest() {
  $('crest-file').addEventListener('change', async () => {
    const file = $('crest-file').files[0];
    clearErrors($('crest-file').closest('section'));
    if (!file) return;
    try {
      await api('/api/admin/crest', { method: 'PUT', raw: file, type: file.type || 'application/octet-stream', as: 'text' });
    } catch (e) {
      formError($('crest-error'), e, { invalid_crest: $('crest-file') });
      return;
    }
    $('crest-file').value = '';
    showCrest(true);
    announce(t('crest.saved'));
  });
  $('crest-remove').addEventListener('click', async () => {
    try {
      await api('/api/admin/crest', { method: 'DELETE', as: 'text' });
    } catch (e) {
      formError($('crest-error'), e, {});
      return;
    }
    showCrest(false);
    $('crest-file').focus();
    announce(t('crest.removed'));
  });
}

function wireSettings() {
  $('settings-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors($('settings-form'));
    let saved;
    try {
      saved = await api('/api/admin/settings', {
        method: 'PUT',
        body: {
          municipality_name: $('set-name').value, patron_day: $('set-patron').value.trim(),
          min_notice_minutes: Number($('set-notice').value), horizon_days: Number($('set-horizon').value),
          ...Object.fromEntries(Object.entries(IDENTITY).map(([id, key]) => [key, $(id).value.trim()])),
        },
      });
    } catch (e) {
      formError($('settings-error'), e, {
        invalid_patron_day: $('set-patron'), invalid_booking_window: $('set-notice'),
      });
      return;
    }
    fillSettings(saved);
    announce(t('admin.saved'));
  });
}

// --- start -----------------------------------------------------------------------------------------

async function loadAll() {
  try {
    [offices, services, users] = await Promise.all([api('/api/admin/offices'), api('/api/admin/services'), api('/api/admin/users')]);
  } catch (e) {
    if (e.status === 401) location.assign('/staff');
    else denied(e.message);
    return false;
  }
  renderOffices();
  renderServices();
  renderUsers();
  // The other forms list offices and staff too: a new office shows in the service form at once,
  // keeping what is ticked there.
  if ($('service-offices').childElementCount) renderServiceOffices(checked($('service-offices')));
  if ($('office-members').childElementCount) renderOfficeMembers(checked($('office-members')));
  return true;
}

function denied(message) {
  $('admin-view').hidden = true;
  $('admin-denied').textContent = message;
  $('admin-denied').hidden = false;
}

async function init() {
  initPage();
  try {
    me = await api('/api/auth/me');
  } catch (e) {
    if (e.status === 401) location.assign('/staff');
    else denied(e.message);
    return;
  }
  if (me.user.role !== 'admin') {
    denied(t('admin.forbidden'));
    return;
  }
  wireOffices();
  wireServices();
  wireUsers();
  wireSettings();
  wireCrest();
  if (!(await loadAll())) return;
  // Without them the form stays empty; the other sections work all the same.
  const settings = await api('/api/admin/settings').catch(() => null);
  if (settings) fillSettings(settings);
  fillOfficeForm(null);
  fillServiceForm(null);
  fillUserForm(null);
  initWebhooks();
  initAppio();
  $('admin-view').hidden = false;
  onLangChange(() => {
    renderOffices();
    renderServices();
    renderUsers();
    // Re-label the forms without losing what is being typed.
    for (const prefix of ['office-hours', 'office-desk-hours']) {
      for (let i = 0; i < 7; i++) {
        const label = document.querySelector(`label[for="${prefix}-${i}"]`);
        if (label) label.textContent = t('day.' + i);
        const input = $(`${prefix}-${i}`);
        if (input) input.placeholder = t('off.closed');
      }
    }
    if (!editing.office) $('office-form-title').textContent = t('off.new');
    if (!editing.service) $('service-form-title').textContent = t('svc.new');
    if (!editing.user) $('user-form-title').textContent = t('usr.new');
  });
}

init();
