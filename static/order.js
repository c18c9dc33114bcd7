// Makes the order page live: state, QR swap and countdown from Server-Sent Events.
// The page is complete without this file (it refreshes itself every 5 s).
(function () {
  "use strict";
  var root = document.getElementById("order");
  if (!root || !window.EventSource) return;
  var noscriptRefresh = document.querySelector("meta[http-equiv=refresh]");
  if (noscriptRefresh) noscriptRefresh.remove();
  var labels = {
    open: document.documentElement.lang === "en" ? "Waiting for payment" : "待支付",
    paid: document.documentElement.lang === "en" ? "Paid" : "已支付",
    expired: document.documentElement.lang === "en" ? "Expired" : "已过期",
    cancelled: document.documentElement.lang === "en" ? "Cancelled" : "已取消"
  };
  var stateEl = document.getElementById("state");
  var qr = document.getElementById("qr");
  var seconds = document.getElementById("seconds");
  var qrError = document.getElementById("qr-error");
  var deadline = Date.now() + 1000 * Number(root.dataset.secondsLeft || 0);

  function apply(s) {
    root.dataset.state = s.state;
    root.dataset.qrState = s.qr_state || "";
    if (stateEl) stateEl.textContent = labels[s.state] || s.state;
    if (qrError && s.qr_error) qrError.textContent = s.qr_error;
    if (s.qr_expires_at) deadline = Date.parse(s.qr_expires_at);
    var v = String(s.qr_version || 0);
    if (qr && s.qr_state === "open" && root.dataset.qrVersion !== v) {
      root.dataset.qrVersion = v;
      qr.src = root.dataset.qrSrc + "?v=" + v;
    }
    if (s.state !== "open") {
      source.close();
    }
  }

  function tick() {
    if (seconds) seconds.textContent = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
  }
  setInterval(tick, 250);

  var source = new EventSource(root.dataset.events);
  source.addEventListener("status", function (e) {
    try { apply(JSON.parse(e.data)); } catch (err) { /* a bad event must not stop the page */ }
  });
})();
