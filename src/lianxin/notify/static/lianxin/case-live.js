// The case page, kept live like the queue: it polls the alert's timeline and status, so a
// notification, a call or a colleague's acknowledgement shows without a reload.
(function () {
  "use strict";
  var timeline = document.getElementById("timeline");
  var status = document.getElementById("alert-status");
  if (!timeline || !timeline.dataset.live) return;
  var seen = timeline.querySelectorAll("li").length;
  function refresh() {
    if (document.hidden) return;
    fetch(timeline.dataset.live, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (data.events !== seen) { timeline.innerHTML = data.html; seen = data.events; }
        if (status && status.textContent.trim() !== data.status_label) {
          status.textContent = data.status_label;
          status.className = "state st-" + data.status;
        }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  setInterval(refresh, 5000);
})();
