// The waiting page: hold a request until the phone decides, then follow the
// "continue" link (which works without JavaScript too). The time left is
// counted down in the page's language; 20 s before the end a warning is
// announced (WCAG 2.2.1), and when the time is up the page stays, offering
// a new request to the phone instead of leaving.
"use strict";
(function () {
  const wait = document.getElementById("wait");
  const next = document.getElementById("continue");
  if (!wait || !next || !wait.dataset.poll) return;
  const url = wait.dataset.poll;
  const time = document.getElementById("time");
  const warning = document.getElementById("time-warning");
  const again = document.getElementById("again");
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  // One way out: the citizen's click on "continue", or the script's.
  let leaving = false;
  function leave() {
    if (leaving) return;
    leaving = true;
    const href = next.href;
    next.removeAttribute("href");
    next.setAttribute("aria-disabled", "true");
    window.location.assign(href);
  }
  next.addEventListener("click", (e) => {
    e.preventDefault();
    leave();
  });
  function expired() {
    if (warning) warning.textContent = warning.dataset.expired;
    if (time) time.hidden = true;
    if (again) again.focus();
  }
  if (time && time.dataset.seconds) {
    const deadline = Date.now() + Number(time.dataset.seconds) * 1000;
    const rules = new Intl.PluralRules(document.documentElement.lang);
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      const form = time.dataset[rules.select(left)] || time.dataset.other;
      time.textContent = form.replace("#", String(left));
      if (left <= 20 && warning && !warning.textContent) warning.textContent = warning.dataset.warning;
      if (left === 0) return expired();
      setTimeout(tick, 1000);
    };
    tick();
  }
  async function poll() {
    for (;;) {
      if (leaving) return;
      try {
        const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (r.ok) {
          const s = await r.json();
          if (s.status === "expired" && again) return expired();
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
    leave();
  }
  poll();
})();
