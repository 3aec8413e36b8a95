// Switch the language as soon as one is picked. A file, not an onchange attribute: the
// Content-Security-Policy runs no inline script.
document.querySelectorAll("form.lang select").forEach(function (select) {
  select.addEventListener("change", function () { select.form.submit(); });
});
