// The browser companion: the page moves bytes and draws; the Rust core
// (pkg/, mobile-core compiled to wasm32) builds every request, verifies
// every challenge, checks the PIN and signs. The device (its key included)
// is stored in IndexedDB only encrypted, under an AES-GCM key WebCrypto
// made non-extractable: script on this page can use it, never read it.
import init, { Companion, locale_for, locales, messages } from './pkg/potvrda_mobile_web.js';

const $ = (id) => document.getElementById(id);
const server = location.origin;
let device = null;
let polling = null;

// --- language: the citizen's choice, else the browser's languages --------
let texts = {};
const t = (id) => texts[id] ?? id;

function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}

function useLanguage(tag) {
  texts = JSON.parse(messages(tag));
  document.documentElement.lang = tag;
  translate(document);
  translate($('login-card').content);
  const name = $('name');
  if (!name.dataset.edited) name.value = t('app-device-default');
  $('lang-choice').value = tag;
  if (device) { device.set_locale(tag); store().catch(() => {}); }
}

function languages() {
  const choice = $('lang-choice');
  choice.replaceChildren(...JSON.parse(locales()).map((l) =>
    Object.assign(document.createElement('option'), { value: l.tag, lang: l.tag, textContent: l.name })));
  choice.addEventListener('change', () => {
    localStorage.setItem('potvrda-lang', choice.value);
    useLanguage(choice.value);
    // The server writes the notifications: tell it the new language.
    if (device && document.body.dataset.push === 'on') subscribe(true).catch(() => {});
  });
  $('name').addEventListener('input', () => { $('name').dataset.edited = 'true'; });
  const chosen = localStorage.getItem('potvrda-lang');
  useLanguage(locale_for(chosen ?? (navigator.languages ?? [navigator.language]).join(' ')));
}

function say(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function show(section) {
  for (const id of ['enroll', 'recovery', 'home']) $(id).hidden = id !== section;
}

// --- storage: IndexedDB, encrypted under a non-extractable key -----------
function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('potvrda', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function kv(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const tx = conn.transaction('kv', mode);
    const req = fn(tx.objectStore('kv'));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
  });
}

async function wrappingKey() {
  let key = await kv('readonly', (s) => s.get('wrap'));
  if (!key) {
    key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    await kv('readwrite', (s) => s.put(key, 'wrap'));
  }
  return key;
}

async function store() {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(device.save());
  const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await wrappingKey(), plain);
  await kv('readwrite', (s) => s.put({ iv, data }, 'device'));
}

async function load() {
  const saved = await kv('readonly', (s) => s.get('device'));
  if (!saved) return null;
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: saved.iv }, await wrappingKey(), saved.data);
  return Companion.restore(new TextDecoder().decode(plain));
}

// --- transport: the core's requests, sent with fetch ----------------------
async function send(requestJson) {
  const r = JSON.parse(requestJson);
  const resp = await fetch(r.url, {
    method: r.method,
    headers: Object.fromEntries(r.headers),
    body: r.body ?? undefined,
    credentials: 'omit',
    cache: 'no-store',
  });
  return { status: resp.status, body: new Uint8Array(await resp.arrayBuffer()) };
}

function message(err) {
  const text = String(err && err.message ? err.message : err);
  if (text.startsWith('not_confirmed')) return t('app-wrong-pin');
  if (text.startsWith('pin_locked')) return t('app-pin-locked');
  if (text.startsWith('number_required')) return t('app-number-required');
  if (text.startsWith('invalid_activation')) return t('app-invalid-activation');
  if (text.startsWith('server')) return t('app-server-refused') + ' ' + text.split(': ').pop();
  return t('app-error') + ' ' + text;
}

// --- enrollment -----------------------------------------------------------
async function enroll(event) {
  event.preventDefault();
  if ($('pin').value !== $('pin2').value) return say(t('app-pins-differ'), true);
  try {
    const fresh = new Companion();
    fresh.set_locale(document.documentElement.lang);
    const req = fresh.enrollment_request(server, $('code').value, $('pin').value, $('name').value, Date.now());
    const resp = await send(req);
    const done = JSON.parse(fresh.finish_enrollment(resp.status, resp.body));
    device = fresh;
    await store();
    $('codes').replaceChildren(...done.recovery_codes.map((c) => Object.assign(document.createElement('li'), { textContent: c })));
    say(t('app-activated'));
    if (done.recovery_codes.length > 0) show('recovery'); else home();
  } catch (err) {
    say(message(err), true);
  }
}

// --- pending logins -------------------------------------------------------
function card(login) {
  const li = $('login-card').content.firstElementChild.cloneNode(true);
  li.dataset.id = login.id;
  li.querySelector('.service').textContent = login.service;
  li.querySelector('.username').textContent = login.username;
  li.querySelector('.ip').textContent = login.ip ?? '—';
  li.querySelector('.agent').textContent = login.user_agent ?? '—';
  // A CIBA request's message, which the screen asking shows too.
  const binding = li.querySelector('.binding');
  binding.textContent = login.binding_message ?? '';
  binding.hidden = !login.binding_message;
  li.querySelector('.binding-label').hidden = !login.binding_message;
  li.querySelector('.expires').textContent = new Date(login.expires_at * 1000).toLocaleTimeString();
  // A risky login: why (from the signed challenge), and the longer code instead of the number.
  li.querySelector('.notices').replaceChildren(
    ...login.notices.map((n) => Object.assign(document.createElement('li'), { textContent: n })));
  const digits = login.code_digits ?? 2;
  const typed = li.querySelector('.number');
  typed.maxLength = digits;
  typed.pattern = `[0-9]{${digits}}`;
  const answer = async (make) => {
    try {
      const resp = await send(make());
      const outcome = device.answer_outcome(login.id, resp.status, resp.body);
      await store();
      li.remove();
      say(outcome === 'approved' ? t('app-approved') : t('app-denied'));
    } catch (err) {
      await store(); // a wrong PIN counts, even across reloads
      say(message(err), true);
    }
  };
  const pin = () => li.querySelector('.pin').value;
  li.querySelector('.answer').addEventListener('submit', (e) => {
    e.preventDefault();
    answer(() => (login.code_digits
      ? device.approve_code(login.id, typed.value, pin(), Date.now())
      : device.approve(login.id, Number(typed.value), pin(), Date.now())));
  });
  li.querySelector('.deny').addEventListener('click', () => answer(() => device.deny(login.id, Date.now())));
  li.querySelector('.fraud').addEventListener('click', () => answer(() => device.report_fraud(login.id, pin(), Date.now())));
  return li;
}

function draw(logins) {
  const list = $('logins');
  const shown = new Set([...list.children].map((li) => li.dataset.id));
  const now = new Set(logins.map((l) => l.id));
  for (const li of [...list.children]) if (!now.has(li.dataset.id)) li.remove();
  for (const login of logins) if (!shown.has(login.id)) list.append(card(login));
  $('none').hidden = logins.length > 0;
  // Opened from a notification: that login's number field first.
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted) list.querySelector(`[data-id="${CSS.escape(wanted)}"] .number`)?.focus();
}

async function pull() {
  try {
    const resp = await send(device.pending_request(Date.now()));
    draw(JSON.parse(device.receive_pending(resp.status, resp.body, Date.now())));
  } catch (err) {
    say(message(err), true);
  }
}

// --- Web Push (issue 15) -------------------------------------------------
// The server's VAPID key (base64url) as PushManager wants it.
function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

// Subscribe through the browser's PushManager and register the subscription
// with the server; again when the server says the old one is gone (the push
// service answered 404/410). Whether pushes now reach this companion.
async function subscribe(again = false) {
  if (!navigator.serviceWorker || !('PushManager' in window) || !('Notification' in window)) return false;
  const permission = Notification.permission === 'default'
    ? await Notification.requestPermission()
    : Notification.permission;
  if (permission !== 'granted') return false;
  const reg = await navigator.serviceWorker.ready;
  const asked = await send(device.push_status_request(Date.now()));
  const status = JSON.parse(device.push_status(asked.status, asked.body));
  let sub = await reg.pushManager.getSubscription();
  if (sub && status === 'active' && !again) return true;
  if (sub && !again) { await sub.unsubscribe(); sub = null; }
  sub ??= await reg.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(device.vapid_public_key()),
  });
  const { endpoint, keys } = sub.toJSON();
  // Declarative Web Push: iOS shows it even without this service worker;
  // its text in the companion's language.
  const subscription = JSON.stringify({ endpoint, keys, payload: 'declarative', locale: document.documentElement.lang });
  const resp = await send(device.push_request(subscription, Date.now()));
  return JSON.parse(device.push_status(resp.status, resp.body)) === 'active';
}

// Pushes when the browser grants them; pulling every 2 s only as the
// fallback (permission refused, no push service, the subscription gone).
async function wake() {
  let pushed = false;
  try {
    pushed = await subscribe();
  } catch (err) {
    console.warn('push subscription failed; pulling instead', err);
  }
  document.body.dataset.push = pushed ? 'on' : 'off';
  clearInterval(polling);
  if (!pushed) polling = setInterval(() => { if (!document.hidden) pull(); }, 2000);
}

function home() {
  show('home');
  $('who').textContent = device.username() ?? '';
  say(t('app-ready'));
  pull();
  clearInterval(polling);
  polling = setInterval(() => { if (!document.hidden) pull(); }, 2000);
  wake();
}

// A tapped notification navigates here to `#<challenge id>` (the service
// worker): show that login with its number field ready.
window.addEventListener('hashchange', () => { if (device && !$('home').hidden) pull(); });

// Back on screen: pull what arrived meanwhile, and check the subscription.
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && device && !$('home').hidden) { pull(); wake(); }
});

// A push the service worker received (already decrypted by the browser).
navigator.serviceWorker?.addEventListener('message', (event) => {
  if (!device || typeof event.data?.push !== 'string') return;
  try {
    const got = JSON.parse(device.receive_push(event.data.push, Date.now()));
    if (got.withdrawn) {
      // Over: answered on another device, superseded or expired.
      document.querySelector(`[data-id="${CSS.escape(got.withdrawn)}"]`)?.remove();
      $('none').hidden = $('logins').children.length > 0;
      return;
    }
    const login = got.login;
    if (!document.querySelector(`[data-id="${CSS.escape(login.id)}"]`)) $('logins').append(card(login));
    $('none').hidden = true;
  } catch (err) {
    say(message(err), true);
  }
});

async function main() {
  await init();
  languages();
  $('enroll-form').addEventListener('submit', enroll);
  $('codes-done').addEventListener('click', home);
  $('offline-button').addEventListener('click', () => { $('offline').textContent = device.offline_code(Date.now()) ?? '—'; });
  navigator.serviceWorker?.register('sw.js', { scope: './' }).catch(() => {});
  try {
    device = await load();
    device?.set_locale(document.documentElement.lang);
  } catch (err) {
    say(message(err), true);
    return;
  }
  if (device) home(); else { show('enroll'); say(t('app-activate-prompt')); }
  document.body.dataset.ready = 'true';
}

main();
