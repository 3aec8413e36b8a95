// The alert queue, kept live by polling a fragment endpoint (no third-party script).
// New alerts of the kinds and severities the deployment cues (LIANXIN_CUE: rows marked
// data-cue) flash and, once the operator has switched sound on, beep. When the session is lost
// or the server stops answering, a banner says so and the rows are greyed: they are not live.
(function () {
  "use strict";
  var cfg = window.LIANXIN_QUEUE;
  var rows = document.getElementById("queue-rows");
  var count = document.getElementById("queue-count");
  var footer = document.getElementById("queue-footer");
  var at = document.getElementById("live-at");
  var dot = document.getElementById("live-dot");
  var toggle = document.getElementById("sound-toggle");
  var form = document.getElementById("queue-filters");
  var audio = null;
  var known = idsIn(rows);
  var knownCritical = new Set(cuedIn(rows));
  var banner = document.getElementById("not-live");
  var bannerText = document.getElementById("not-live-text");
  var bannerLogin = document.getElementById("not-live-login");
  var table = rows.closest("table");
  var bulk = document.getElementById("close-cleared");
  var lastOk = at.textContent;
  var baseTitle = document.title;
  var flashing = new Set();  // new critical alerts stay highlighted until someone takes them

  function idsIn(root) {
    return new Set(Array.prototype.map.call(root.querySelectorAll("tr[data-id]"), function (tr) {
      return tr.dataset.id;
    }));
  }
  function cuedIn(root) {
    return Array.prototype.map.call(
      root.querySelectorAll("tr[data-cue][data-id]"), function (tr) { return tr.dataset.id; });
  }
  function live() {
    banner.hidden = true;
    table.classList.remove("stale");
    dot.classList.remove("down");
  }
  function notLive(signedOut) {
    dot.classList.add("down");
    table.classList.add("stale");
    bannerLogin.hidden = !signedOut;
    bannerText.textContent = signedOut ? cfg.signedOut
      : cfg.serverDown + " " + lastOk + ": " + cfg.notLive;
    banner.hidden = false;
  }
  function SignedOut() {}

  // Browsers only let a page make sound after a click, so sound starts with this button.
  toggle.addEventListener("click", function () {
    if (audio) {
      audio.close(); audio = null;
      toggle.textContent = cfg.soundOn; toggle.setAttribute("aria-pressed", "false");
    } else {
      audio = new (window.AudioContext || window.webkitAudioContext)();
      toggle.textContent = cfg.soundOff; toggle.setAttribute("aria-pressed", "true");
      beep(1);
    }
  });

  function beep(times) {
    if (!audio) return;
    for (var i = 0; i < times; i++) {
      var t = audio.currentTime + i * 0.35;
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.3);
    }
  }

  form.addEventListener("change", function () { form.submit(); });
  rows.addEventListener("click", function (e) {
    var tr = e.target.closest("tr[data-href]");
    if (tr && !e.target.closest("a")) window.location = tr.dataset.href;
  });

  function poll() {
    var url = cfg.url + window.location.search;
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        // The login page answers a lost session (a redirect, or 401/403 from the fragment).
        if (r.redirected || r.status === 401 || r.status === 403) throw new SignedOut();
        if (!r.ok) throw new Error("status " + r.status);
        return r.json();
      })
      .then(function (data) {
        rows.innerHTML = data.html;
        count.textContent = data.count;
        if (footer && data.footer) footer.textContent = data.footer;
        at.textContent = data.at;
        lastOk = data.at;
        live();
        if (bulk) {
          bulk.hidden = !data.cleared;
          var n = document.getElementById("cleared-count");
          if (n) n.textContent = data.cleared;
        }
        var fresh = [];
        rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
          if (!known.has(tr.dataset.id)) { tr.classList.add("fresh"); fresh.push(tr.dataset.id); }
        });
        var cued = data.cue || data.critical_new;
        var newCritical = cued.map(String).filter(function (id) {
          return !knownCritical.has(id);
        });
        var stillCritical = new Set(cued.map(String));
        newCritical.forEach(function (id) { flashing.add(id); });
        flashing.forEach(function (id) {
          var tr = rows.querySelector('tr[data-id="' + id + '"]');
          if (tr && stillCritical.has(id)) tr.classList.add("flash"); else flashing.delete(id);
        });
        if (newCritical.length) beep(3);
        // The title counts what flashes now, not only what arrived in this poll.
        document.title = flashing.size
          ? "(" + flashing.size + ") " + cfg.newAlerts + " · " + baseTitle : baseTitle;
        known = idsIn(rows);
        knownCritical = stillCritical;
      })
      .catch(function (e) { notLive(e instanceof SignedOut); });
  }
  setInterval(poll, 3000);
})();
