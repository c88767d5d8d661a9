// The companion's service worker: makes /app installable and hands a Web
// Push message (the browser has already decrypted it, RFC 8291) to the open
// page, which verifies it in the core like any pulled challenge; with no
// page open it shows a notification that opens one.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', () => {});
self.addEventListener('push', (event) => {
  const text = event.data ? event.data.text() : '';
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: 'window' });
    if (pages.length > 0) {
      pages.forEach((page) => page.postMessage({ push: text }));
    } else {
      await self.registration.showNotification('Potvrda', {
        body: 'Prijava čeka potvrdu · A login is waiting for you',
        tag: 'potvrda-login',
      });
    }
  })());
});
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow('/app/'));
});
