// The wall screen: polls the figures every 10 s; the oldest unacknowledged alert's timer runs
// every second from the server's clock (corrected for this screen's own clock).
(function () {
  var body = document.getElementById("wall");
  var url = body.dataset.url;
  var skew = 0;          // server time minus this screen's time, in ms
  var since = null;      // opened_at of the oldest unacknowledged alert, in ms (server time)
  var lastOk = Date.now();

  function list(id, items) {
    var ul = document.getElementById(id);
    ul.textContent = "";
    items.forEach(function (it) {
      var li = document.createElement("li");
      li.className = "c-" + it.key + (it.n ? "" : " zero");
      li.dataset.key = it.key;
      var n = document.createElement("strong");
      n.textContent = it.n;
      var label = document.createElement("span");
      label.textContent = it.label;
      li.appendChild(n);
      li.appendChild(label);
      ul.appendChild(li);
    });
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hms(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    return pad(Math.floor(s / 3600)) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  }

  function tick() {
    var now = Date.now() + skew;
    var clock = document.getElementById("wall-clock");
    // The deployment's time, whatever zone the display's computer is set to.
    clock.textContent = new Date(now).toLocaleTimeString(document.documentElement.lang,
      {hour12: false, timeZone: body.dataset.tz || undefined});
    var t = document.getElementById("oldest-timer");
    if (t && since !== null) t.textContent = hms(now - since);
    var stale = Date.now() - lastOk > 35000;
    document.getElementById("wall-stale").hidden = !stale;
    document.getElementById("wall-live").classList.toggle("down", stale);
  }

  function oldest(o) {
    var box = document.getElementById("wall-oldest");
    box.textContent = "";
    if (!o) {
      since = null;
      var p = document.createElement("p");
      p.className = "wall-none";
      p.textContent = document.getElementById("wall-none-text").textContent;
      box.appendChild(p);
      return;
    }
    var card = document.getElementById("oldest-template").content.firstElementChild.cloneNode(true);
    card.classList.add("sev-" + o.severity);
    card.dataset.id = o.id;
    card.querySelector(".oldest-kind").textContent = o.severity_label + " · " + o.kind;
    card.querySelector(".oldest-where").textContent = o.where;
    box.appendChild(card);
    since = Date.parse(o.since);
    tick();
  }

  function latest(items) {
    var ul = document.getElementById("wall-latest");
    ul.textContent = "";
    items.forEach(function (a) {
      var li = document.createElement("li");
      li.className = "sev-" + a.severity;
      li.dataset.id = a.id;
      var kind = document.createElement("strong");
      kind.textContent = a.kind;
      var where = document.createElement("span");
      where.textContent = a.where;
      var state = document.createElement("em");
      state.textContent = a.state;
      li.appendChild(kind);
      li.appendChild(state);
      li.appendChild(where);
      ul.appendChild(li);
    });
  }

  function draw(d) {
    skew = Date.parse(d.now) - Date.now();
    lastOk = Date.now();
    list("wall-severity", d.severity);
    list("wall-states", d.states);
    list("wall-today", d.today);
    oldest(d.oldest);
    latest(d.latest);
    var sys = document.getElementById("wall-system");
    sys.hidden = !d.system_alerts;
    sys.querySelector("strong").textContent = d.system_alerts;
    body.dataset.ready = "1";
    tick();
  }

  function load() {
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}, redirect: "manual"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(draw)
      .catch(function () { tick(); });
  }
  load();
  setInterval(load, 10000);
  setInterval(tick, 1000);
})();
