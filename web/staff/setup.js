// /staff/setup#<secret>: set the password through a one-time link (new staff, reset, or the first
// administrator, who also gives email and name: those fields appear only when the server asks for
// them). The secret stays in the fragment: it never reaches a server log or a Referer.

import { initPage, t } from '../shared/i18n.js';
import { api } from '../shared/api.js';
import { clearErrors, showError } from '../shared/dom.js';
import './strings.js';

const MIN = 10;
const $ = (id) => document.getElementById(id);

function showInvalid(message) {
  $('setup-invalid-text').textContent = message;
  $('setup-invalid').hidden = false;
  $('setup-form').hidden = true;
  $('setup-invalid').querySelector('h2').setAttribute('tabindex', '-1');
  $('setup-invalid').querySelector('h2').focus();
}

function init() {
  initPage();
  const secret = decodeURIComponent(location.hash.slice(1)).trim();
  if (!secret) {
    showInvalid(t('setup.nolink'));
    return;
  }
  const form = $('setup-form');
  const error = $('setup-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const password = $('setup-password').value;
    if (password.length < MIN) {
      showError(error, t('setup.short'), [$('setup-password')]);
      $('setup-password').focus();
      return;
    }
    if (password !== $('setup-password2').value) {
      showError(error, t('setup.mismatch'), [$('setup-password2')]);
      $('setup-password2').focus();
      return;
    }
    const body = { token: secret, password };
    // Only the first administrator fills these; a staff link must not send empty values.
    const email = $('setup-email').value.trim();
    const name = $('setup-name').value.trim();
    if (email) body.email = email;
    if (name) body.display_name = name;
    $('setup-submit').disabled = true;
    try {
      await api('/api/auth/setup', { method: 'POST', body });
    } catch (e) {
      $('setup-submit').disabled = false;
      if (e.status === 410) {
        showInvalid(e.message);
        return;
      }
      // Only the first-administrator link is answered with these: its fields appear then (a link
      // for new staff never shows them).
      if (e.code === 'invalid_email' || e.code === 'invalid_name') $('setup-first').hidden = false;
      const fields = {
        weak_password: [$('setup-password')], invalid_password: [$('setup-password')],
        invalid_email: [$('setup-email')], invalid_name: [$('setup-name')],
      }[e.code] ?? [];
      showError(error, e.message, fields);
      (fields[0] ?? $('setup-password')).focus();
      return;
    }
    $('setup-submit').disabled = false;
    $('setup-status').textContent = t('setup.done');
    // Drop the used secret from history before leaving.
    history.replaceState(null, '', '/staff/setup');
    location.assign('/staff');
  });
}

init();
