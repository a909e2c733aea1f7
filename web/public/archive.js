// Archive pages (/archivio/…): the chapter buttons seek their recording. Rendered by the server;
// this script only adds behaviour (the page works without it: the video has its own controls).

// The language: the server renders `?lang=` or Accept-Language. The language chosen on the other
// pages (kept by shared/i18n.js) wins when the address names none, and the switch here (a plain
// link) is remembered for them.
import { LANGS, rememberLang, storedLang } from '/web/shared/i18n.js';

function followChosenLanguage() {
  const chosen = storedLang();
  const url = new URL(location.href);
  if (url.searchParams.has('lang') || !LANGS.includes(chosen)) return;
  if (chosen === document.documentElement.lang) return;
  url.searchParams.set('lang', chosen);
  location.replace(url.href);
}

document.getElementById('lang-switch')?.addEventListener('click', (event) => {
  rememberLang(event.currentTarget.dataset.lang);
});
followChosenLanguage();

function seek(button) {
  const video = document.getElementById(button.dataset.video);
  const ms = Number(button.dataset.startMs);
  if (!video || !Number.isFinite(ms)) return;
  const go = () => {
    video.currentTime = ms / 1000;
    video.play().catch(() => {}); // autoplay rules may refuse; the position is set anyway
  };
  // Before the metadata is loaded the position cannot be set yet.
  if (video.readyState >= 1) go();
  else {
    video.addEventListener('loadedmetadata', go, { once: true });
    video.load();
  }
}

// The chapter being played is marked (aria-current) so that it is visible and announced.
function track(video) {
  const buttons = [...document.querySelectorAll(`button.chapter[data-video="${video.id}"]`)];
  video.addEventListener('timeupdate', () => {
    const now = video.currentTime * 1000;
    let current = null;
    for (const b of buttons) if (Number(b.dataset.startMs) <= now) current = b;
    for (const b of buttons) {
      if (b === current) b.setAttribute('aria-current', 'true');
      else b.removeAttribute('aria-current');
    }
  });
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('button.chapter');
  if (button) seek(button);
});
for (const video of document.querySelectorAll('video.recording-video')) track(video);
