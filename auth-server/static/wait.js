// The waiting page: hold a request until the phone decides, then follow the
// "continue" link (which works without JavaScript too).
"use strict";
(function () {
  const wait = document.getElementById("wait");
  const next = document.getElementById("continue");
  if (!wait || !next || !wait.dataset.poll) return;
  const url = wait.dataset.poll;
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  async function poll() {
    for (;;) {
      try {
        const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (r.ok) {
          const s = await r.json();
          if (s.status !== "pending") break;
        } else if (r.status < 500) {
          break;
        } else {
          await pause(1000);
        }
      } catch (e) {
        await pause(1000);
      }
    }
    window.location.assign(next.href);
  }
  poll();
})();
