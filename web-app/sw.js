// The companion's service worker: makes /app installable, shows a Web Push
// message (the browser has already decrypted it, RFC 8291) as a
// notification, and hands it to the open page, which verifies it in the
// core like any pulled challenge; a withdrawal closes the notification.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', () => {});
// The JWS's header and claims, unverified: only to name the notification
// (tag = the challenge id) and to close it on a withdrawal. Everything a
// citizen acts on is verified by the core in the page.
function peek(jws) {
  try {
    const part = (i) => JSON.parse(atob(jws.split('.')[i].replace(/-/g, '+').replace(/_/g, '/')));
    const claims = part(1);
    return { typ: part(0).typ, cid: claims.cid, ctx: claims.ctx ?? {} };
  } catch {
    return {};
  }
}

// A challenge comes as Declarative Web Push JSON (the platform's title,
// body and page, the JWS in data.jws); a withdrawal as a bare JWS.
function unwrap(text) {
  if (!text.startsWith('{')) return { jws: text, shown: null };
  try {
    const msg = JSON.parse(text);
    if (msg.web_push === 8030) return { jws: msg.notification?.data?.jws ?? '', shown: msg.notification };
  } catch { /* not JSON */ }
  return { jws: '', shown: null };
}

self.addEventListener('push', (event) => {
  const { jws: text, shown: declared } = unwrap(event.data ? event.data.text().trim() : '');
  const { typ, cid, ctx } = peek(text);
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: 'window' });
    pages.forEach((page) => page.postMessage({ push: text }));
    if (typ === 'potvrda-withdrawal+jwt') {
      // The login is over (answered elsewhere, superseded, expired).
      const shown = await self.registration.getNotifications({ tag: `potvrda-${cid}` });
      shown.forEach((n) => n.close());
      return;
    }
    // A login waits: the service and where it comes from; the number and
    // the PIN are asked on the page, after the core verified the challenge.
    const from = [ctx.ip, ctx.user_agent].filter(Boolean).join(' · ');
    await self.registration.showNotification(declared?.title ?? ctx.service ?? 'Potvrda', {
      body: declared?.body ?? from ?? '',
      tag: `potvrda-${cid}`,
      requireInteraction: true,
      data: { cid, shown_at: Date.now(), navigate: declared?.navigate ?? null },
    });
  })());
});
// Tapping it opens the companion on that login.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const cid = event.notification.data?.cid ?? '';
  event.waitUntil((async () => {
    const url = new URL(`./#${encodeURIComponent(cid)}`, self.registration.scope).href;
    const pages = await self.clients.matchAll({ type: 'window' });
    const open = pages.find((p) => p.url.startsWith(self.registration.scope));
    if (open) {
      await open.navigate(url).catch(() => {});
      return open.focus();
    }
    return self.clients.openWindow(url);
  })());
});
