// The companion's service worker: makes /app installable and hands a Web
// Push message (the browser has already decrypted it, RFC 8291) to the open
// page, which verifies it in the core like any pulled challenge; with no
// page open it shows a notification that opens one.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', () => {});
// The JWS's header and claims, unverified: only to name the notification
// (tag = the challenge id) and to close it on a withdrawal. Everything a
// citizen acts on is verified by the core in the page.
function peek(jws) {
  try {
    const part = (i) => JSON.parse(atob(jws.split('.')[i].replace(/-/g, '+').replace(/_/g, '/')));
    return { typ: part(0).typ, cid: part(1).cid };
  } catch {
    return {};
  }
}

self.addEventListener('push', (event) => {
  const text = event.data ? event.data.text().trim() : '';
  const { typ, cid } = peek(text);
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: 'window' });
    pages.forEach((page) => page.postMessage({ push: text }));
    if (typ === 'potvrda-withdrawal+jwt') {
      // The login is over (answered elsewhere, superseded, expired).
      const shown = await self.registration.getNotifications({ tag: `potvrda-${cid}` });
      shown.forEach((n) => n.close());
    } else if (pages.length === 0) {
      await self.registration.showNotification('Potvrda', {
        body: 'Prijava čeka potvrdu · A login is waiting for you',
        tag: `potvrda-${cid}`,
      });
    }
  })());
});
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow('/app/'));
});
