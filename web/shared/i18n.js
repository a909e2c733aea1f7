// The one i18n runtime of every page: Italian first, English second.
//
// Catalogs (each audience's `strings.js`, a page's own words) register with `addStrings`; static
// markup names its words with `data-i18n="key"` (text) and `data-i18n-attr="attr:key;attr:key"`
// (attributes), which `applyI18n` fills; dynamic parts register with `onLangChange` and re-render.
// The chosen language is kept in the browser under one key, STORAGE_KEY, by every page (the archive
// pages rendered by the server read it too), so a switch on one page holds on all the others.

export const LANGS = ['it', 'en'];
export const STORAGE_KEY = 'sportello.lang';

// The words of the frame (web/shared/frame.html): skip link, language switch, the staff area's
// tagline, the footer's headings and links. The municipality's own name and contacts come from the
// server, already in the page, and are not translated.
const STRINGS = {
  it: {
    'app.name': 'Sportello',
    'skip': 'Vai al contenuto principale',
    'lang.switch': 'English',
    'lang.switch.code': 'en',
    'app.staff': 'Area del personale',
    'footer.contacts': 'Contatti',
    'footer.phone': 'Telefono',
    'footer.email': 'Email',
    'footer.pec': 'PEC',
    'footer.vat': 'Codice fiscale / Partita IVA',
    'footer.links': 'Informazioni',
    'footer.privacy': 'Informativa privacy',
    'footer.accessibility': 'Dichiarazione di accessibilità',
    'footer.legal': 'Note legali',
    'footer.website': 'Sito istituzionale del Comune',
    'footer.software': 'Uffici virtuali realizzati con Sportello',
  },
  en: {
    'app.name': 'Sportello',
    'skip': 'Skip to main content',
    'lang.switch': 'Italiano',
    'lang.switch.code': 'it',
    'app.staff': 'Staff area',
    'footer.contacts': 'Contacts',
    'footer.phone': 'Phone',
    'footer.email': 'Email',
    'footer.pec': 'Certified email (PEC)',
    'footer.vat': 'Tax code / VAT number',
    'footer.links': 'Information',
    'footer.privacy': 'Privacy notice',
    'footer.accessibility': 'Accessibility statement',
    'footer.legal': 'Legal notes',
    'footer.website': 'The municipality\'s website',
    'footer.software': 'Virtual offices made with Sportello',
  },
};

/**
 * The municipality's name as the server wrote it in the frame's
 * `<meta name="sportello-municipality">` (e.g. «Comune di Esempio»); every title ends with it.
 * Strings may say `{municipality}`: `t` fills it with this name unless given another.
 */
export function municipalityName() {
  const meta = typeof document === 'undefined' ? null : document.querySelector('meta[name="sportello-municipality"]');
  return meta?.content.trim() || 'Comune';
}

/** The language chosen earlier in this browser, or null. */
export function storedLang() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(v)) return v;
  } catch { /* storage disabled */ }
  return null;
}

/** Remembers `lang` for the other pages. */
export function rememberLang(lang) {
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* not remembered */ }
}

let current = storedLang() ?? 'it';
const listeners = new Set();

/** Adds a catalog `{it: {...}, en: {...}}`; call before `initPage`. */
export function addStrings(catalog) {
  for (const lang of LANGS) Object.assign(STRINGS[lang], catalog[lang] ?? {});
}

export function getLang() {
  return current;
}

/**
 * `key` in the current language (Italian when missing there), `{param}` placeholders filled;
 * `{municipality}` is the municipality's name unless `params` gives it.
 */
export function t(key, params = {}) {
  const s = STRINGS[current][key] ?? STRINGS.it[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? (k === 'municipality' ? municipalityName() : '')));
}

/** Fills `data-i18n` texts and `data-i18n-attr` attributes under `root`. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/** Calls `fn(lang)` after every language change; returns a function that stops it. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  current = lang;
  rememberLang(lang);
  document.documentElement.lang = lang;
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

/**
 * Translates the static page and wires the frame's `#lang-switch` (it shows the other language's
 * name and switches to it); `render`, if given, runs again after every change.
 */
export function initPage(render) {
  document.documentElement.lang = current;
  applyI18n(document);
  const btn = document.getElementById('lang-switch');
  if (btn) {
    const label = () => {
      btn.textContent = t('lang.switch');
      btn.lang = t('lang.switch.code');
    };
    label();
    onLangChange(label);
    btn.addEventListener('click', () => setLang(current === 'it' ? 'en' : 'it'));
  }
  if (render) onLangChange(() => render());
}
