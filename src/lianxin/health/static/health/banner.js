// Keeps the system-alert banner fresh on every page: a dead monitor shows without a reload,
// and the banner goes away only when the condition has ended (it has no close button).
(function () {
  "use strict";
  var holder = document.getElementById("system-alerts");
  if (!holder || !holder.dataset.url) return;
  function poll() {
    fetch(holder.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { if (r.redirected || !r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) { holder.innerHTML = data.html; holder.dataset.count = data.count; })
      .catch(function () {});
  }
  setInterval(poll, parseInt(holder.dataset.every || "10000", 10));
})();
