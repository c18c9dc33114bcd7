// The counter, live: the customer display, the cashier's day (the checkout
// page's newest orders and the paged whole day), and payments
// announced aloud. Every page here is complete without this file (the display
// refreshes itself, the day list is rendered by the server); this only makes
// them live and speaks. What is said is written by the server.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "zh-CN";
  var en = lang === "en";
  var VOICE_KEY = "scanpay.voice";
  var SAID_KEY = "scanpay.announced";

  // ---- Announcements -------------------------------------------------------
  function voiceOn() {
    try { return localStorage.getItem(VOICE_KEY) === "on"; } catch (e) { return false; }
  }
  function said() {
    try { return JSON.parse(localStorage.getItem(SAID_KEY) || "[]"); } catch (e) { return []; }
  }
  function remember(id) {
    var list = said();
    list.push(id);
    try { localStorage.setItem(SAID_KEY, JSON.stringify(list.slice(-100))); } catch (e) { /* private mode */ }
  }
  var audio = null;
  function chime() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      audio = audio || new Ctx();
      if (audio.state === "suspended") audio.resume();
      [880, 1320].forEach(function (f, i) {
        var o = audio.createOscillator();
        var g = audio.createGain();
        var t = audio.currentTime + i * 0.16;
        o.frequency.value = f;
        g.gain.setValueAtTime(0.0001, t);
        g.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + 0.15);
        o.connect(g); g.connect(audio.destination);
        o.start(t); o.stop(t + 0.16);
      });
    } catch (e) { /* no sound is better than a broken page */ }
  }
  function speak(text) {
    var synth = window.speechSynthesis;
    var voices = [];
    try { voices = (synth && synth.getVoices) ? synth.getVoices() : []; } catch (e) { voices = []; }
    var prefix = lang.slice(0, 2).toLowerCase();
    var voice = null;
    for (var i = 0; i < voices.length; i++) {
      if (voices[i] && String(voices[i].lang || "").toLowerCase().indexOf(prefix) === 0) { voice = voices[i]; break; }
    }
    // Where no voice speaks the shop's language, a chime says "money came in".
    if (!voice) chime();
    if (!synth || !window.SpeechSynthesisUtterance) return;
    try {
      var u = new SpeechSynthesisUtterance(text);
      u.lang = lang;
      try { if (voice) u.voice = voice; } catch (e) { /* a voice from elsewhere */ }
      synth.speak(u);
    } catch (e) { /* as above */ }
  }
  // Says `text` once per `id` on this device (pages hand over to each other).
  function announce(id, text) {
    if (!id || !text || said().indexOf(id) >= 0) return;
    remember(id);
    if (voiceOn()) speak(text);
  }
  function setupToggle() {
    // Browsers load their voices lazily: ask early, so the first payment finds them.
    try { if (window.speechSynthesis) window.speechSynthesis.getVoices(); } catch (e) { /* none */ }
    var b = document.getElementById("voice-toggle");
    if (!b) return;
    var labels = {
      on: b.dataset.on || (en ? "Announcements: on" : "语音播报：开"),
      off: b.dataset.off || (en ? "Turn on announcements" : "开启语音播报")
    };
    function show() {
      b.textContent = voiceOn() ? labels.on : labels.off;
      b.setAttribute("aria-pressed", voiceOn() ? "true" : "false");
    }
    b.hidden = false;
    show();
    b.addEventListener("click", function () {
      try { localStorage.setItem(VOICE_KEY, voiceOn() ? "off" : "on"); } catch (e) { /* private mode */ }
      show();
      // This press is the gesture browsers ask for before sound.
      if (voiceOn()) speak(en ? "Announcements on" : "语音播报已开启");
    });
  }

  // ---- A live feed that survives network drops -------------------------------
  function follow(url, onStatus) {
    var source = null;
    var stopped = false;
    function connect() {
      if (stopped) return;
      source = new EventSource(url);
      source.addEventListener("status", function (e) {
        try { onStatus(JSON.parse(e.data)); } catch (err) { /* a bad event must not stop the page */ }
      });
      // EventSource reconnects by itself after a drop; a refusal (503) or an
      // ended stream closes it for good, so try again a little later.
      source.addEventListener("error", function () {
        if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
      });
    }
    connect();
    return { stop: function () { stopped = true; if (source) source.close(); } };
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  // ---- The customer display --------------------------------------------------
  function display(root) {
    var qr = document.getElementById("d-qr");
    var seconds = document.getElementById("d-seconds");
    var deadline = Date.now() + 1000 * Number(root.dataset.secondsLeft || 0);
    var qrSrc = qr ? qr.getAttribute("src") : "";
    setInterval(function () {
      if (seconds) seconds.textContent = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    }, 250);
    if (root.dataset.announceId) announce(root.dataset.announceId, root.dataset.announceText);
    var feed = follow(root.dataset.events, function (s) {
      root.dataset.mode = s.mode;
      setText("d-amount", s.amount);
      setText("d-description", s.description);
      if (qr && s.qr && s.qr !== qrSrc) { qrSrc = s.qr; qr.src = s.qr; }
      root.dataset.qrVersion = String(s.qr_version || 0);
      deadline = Date.now() + 1000 * Number(s.seconds_left || 0);
      if (s.announce) announce(s.announce.id, s.announce.text);
      if (s.mode === "disconnected") feed.stop();
    });
  }

  // ---- The cashier's day -----------------------------------------------------
  function row(o) {
    var li = document.createElement("li");
    li.dataset.orderNo = o.order_no;
    li.dataset.state = o.state;
    var a = document.createElement("a");
    a.href = o.link;
    [["day-time", o.time], ["day-amount", o.amount], ["day-desc", o.description], ["badge day-state", o.state_label]]
      .forEach(function (p, i) {
        if (i) a.appendChild(document.createTextNode(" "));
        var span = document.createElement("span");
        span.className = p[0];
        span.textContent = p[1];
        a.appendChild(span);
      });
    li.appendChild(a);
    return li;
  }
  function day(root) {
    var list = document.getElementById("day-list");
    Array.prototype.forEach.call(list.querySelectorAll("li[data-announce]"), function (li) {
      announce(li.dataset.orderNo, li.dataset.announce);
    });
    follow(root.dataset.events, function (s) {
      setText("day-created", String(s.created));
      setText("day-total", s.total);
      var none = document.getElementById("day-none");
      if (none) none.hidden = s.orders.length > 0;
      var fresh = document.createDocumentFragment();
      s.orders.forEach(function (o) { fresh.appendChild(row(o)); });
      list.replaceChildren(fresh);
      s.orders.forEach(function (o) { if (o.announce) announce(o.order_no, o.announce); });
      // A page of the whole day (`/day`): new orders push its last one to the next page.
      var older = document.getElementById("day-older");
      if (older && "older" in s) {
        older.hidden = !s.older;
        if (s.older) older.href = s.older; else older.removeAttribute("href");
      }
    });
  }

  // ---- The order page, as the cashier sees it --------------------------------
  // Announces the payment, then, once the customer has paid, brings the form
  // back for the next customer.
  function cashierOnOrder(feedEl) {
    var order = document.getElementById("order");
    follow(feedEl.dataset.events, function (s) {
      s.orders.forEach(function (o) { if (o.announce) announce(o.order_no, o.announce); });
    });
    if (!order || order.dataset.state !== "open" || !window.MutationObserver) return;
    var watch = new MutationObserver(function () {
      if (order.dataset.state === "paid") {
        watch.disconnect();
        setTimeout(function () { location.assign(feedEl.dataset.next || "/"); }, 4000);
      }
    });
    watch.observe(order, { attributes: true, attributeFilter: ["data-state"] });
  }

  if (!window.EventSource) return;
  setupToggle();
  var d = document.getElementById("display");
  if (d) display(d);
  var dayRoot = document.getElementById("day");
  if (dayRoot) day(dayRoot);
  var feedEl = document.getElementById("counter-feed");
  if (feedEl) cashierOnOrder(feedEl);
})();
