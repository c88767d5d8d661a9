// Front-Channel Logout: once every service's logout page has loaded (or
// after five seconds), go on to where the service asked to be sent back.
(() => {
  const next = document.getElementById('continue');
  const frames = Array.from(document.querySelectorAll('iframe.frontchannel'));
  if (!next || !next.getAttribute('href')) return;
  let left = frames.length;
  const go = () => { window.location.assign(next.getAttribute('href')); };
  frames.forEach((f) => f.addEventListener('load', () => { left -= 1; if (left === 0) go(); }));
  setTimeout(go, 5000);
})();
