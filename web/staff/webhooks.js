// The webhooks section of /staff/admin: endpoints, their signing key (shown once) and delivery log.
// Contract: server/src/api/webhooks.rs.

import { onLangChange, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, el, showError } from '../shared/dom.js';
import { announce, fmtDateTime, labelCells, wireCopy } from './common.js';

const $ = (id) => document.getElementById(id);

let hooks = [];
let types = [];
/** The endpoint whose log is open, or null. */
let shown = null;

function failed(box, e, field = null) {
  if (e.status === 401) {
    location.assign('/staff');
    return;
  }
  showError(box, e.message, field ? [field] : []);
  (field ?? box).focus?.();
}

function renderTypes() {
  const ticked = new Set([...$('hook-types').querySelectorAll('input:checked')].map((c) => c.value));
  $('hook-types').replaceChildren(...types.map((type) => {
    const id = `hook-type-${type.replace(/[^a-z_]/g, '-')}`;
    return el('div', { class: 'check' },
      el('input', { type: 'checkbox', id, value: type, checked: ticked.has(type) }),
      el('label', { for: id, text: type }));
  }));
}

function renderHooks() {
  const tbody = $('hooks-table').querySelector('tbody');
  if (!hooks.length) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 4, text: t('admin.none') })));
    return;
  }
  tbody.replaceChildren(...hooks.map((h) => {
    const name = h.description || h.url;
    const button = (text, label, onclick, extra = '') =>
      el('button', { type: 'button', class: `btn btn-small ${extra}`.trim(), text, 'aria-label': `${label}: ${name}`, onclick });
    return el('tr', { dataset: { hookId: h.id } },
      el('th', { scope: 'row', text: h.description ? `${h.description} — ${h.url}` : h.url }),
      el('td', { text: h.event_types.length ? h.event_types.join(', ') : t('hook.events.all') }),
      el('td', { text: h.enabled ? t('hook.enabled') : t('hook.disabled') }),
      el('td', {}, el('div', { class: 'row-actions' },
        button(t('hook.log'), t('hook.log'), () => showLog(h)),
        button(h.enabled ? t('hook.disable') : t('hook.enable'), h.enabled ? t('hook.disable') : t('hook.enable'), () => toggle(h)),
        button(t('admin.delete'), t('admin.delete'), () => remove(h), 'btn-danger'))));
  }));
  labelCells($('hooks-table'));
}

function attempts(d) {
  return d.attempts.map((a) => `${a.attempt}: ${a.status_code ?? t('hook.attempt.none')}${a.error ? ` (${a.error})` : ''}`).join('; ');
}

async function showLog(h) {
  let log;
  try {
    log = await api(`/api/admin/webhooks/${encodeURIComponent(h.id)}/deliveries`);
  } catch (e) {
    failed($('hook-error'), e);
    return;
  }
  shown = h;
  const tbody = $('hook-log-table').querySelector('tbody');
  tbody.replaceChildren(...(log.length ? log.map((d) => el('tr', {},
    el('td', { text: fmtDateTime(d.created_at) }),
    el('th', { scope: 'row', text: d.event_type }),
    el('td', { text: t(`hook.status.${d.status}`) }),
    el('td', { text: attempts(d) })))
    : [el('tr', {}, el('td', { colspan: 4, text: t('hook.log.none') }))]));
  labelCells($('hook-log-table'));
  $('hook-log-title').textContent = t('hook.log.title', { url: h.url });
  $('hook-log-box').hidden = false;
  $('hook-log-title').focus();
}

async function toggle(h) {
  try {
    await api(`/api/admin/webhooks/${encodeURIComponent(h.id)}`, {
      method: 'PUT', body: { url: h.url, description: h.description, event_types: h.event_types, enabled: !h.enabled },
    });
  } catch (e) {
    failed($('hook-error'), e);
    return;
  }
  announce(t('admin.saved'));
  await load();
}

async function remove(h) {
  if (!confirm(t('admin.confirm.delete', { name: h.url }))) return;
  try {
    await api(`/api/admin/webhooks/${encodeURIComponent(h.id)}`, { method: 'DELETE' });
  } catch (e) {
    failed($('hook-error'), e);
    return;
  }
  if (shown?.id === h.id) $('hook-log-box').hidden = true;
  announce(t('admin.deleted'));
  await load();
}

async function load() {
  try {
    hooks = await api('/api/admin/webhooks');
  } catch (e) {
    failed($('hook-error'), e);
    return;
  }
  renderHooks();
}

/** Wires the section and fills it; called once the page knows an administrator is there. */
export async function initWebhooks() {
  wireCopy($('hook-secret-copy'), $('hook-secret'));
  $('hook-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors($('hook-form'));
    let created;
    try {
      created = await api('/api/admin/webhooks', {
        method: 'POST',
        body: {
          url: $('hook-url').value.trim(),
          description: $('hook-description').value,
          event_types: [...$('hook-types').querySelectorAll('input:checked')].map((c) => c.value),
        },
      });
    } catch (e) {
      failed($('hook-error'), e, { invalid_url: $('hook-url'), invalid_field: $('hook-description') }[e.code] ?? null);
      return;
    }
    $('hook-form').reset();
    $('hook-secret').value = created.secret;
    $('hook-secret-box').hidden = false;
    $('hook-secret-title').focus();
    announce(t('hook.created'));
    await load();
  });
  types = await api('/api/admin/webhook-event-types').catch(() => []);
  renderTypes();
  await load();
  onLangChange(() => {
    renderHooks();
    if (shown && !$('hook-log-box').hidden) $('hook-log-title').textContent = t('hook.log.title', { url: shown.url });
  });
}
