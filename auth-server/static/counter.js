// The counter's printed sheet: the "print" button (inline handlers are
// forbidden by the page's Content-Security-Policy).
"use strict";
(function () {
  const button = document.getElementById("print");
  if (button) button.addEventListener("click", () => window.print());
})();
