// The print button (a script file, not an onclick=, so the page keeps its
// Content-Security-Policy: script-src 'self').
(function () {
  "use strict";
  var button = document.querySelector("[data-print]");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
