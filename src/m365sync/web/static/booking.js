// Public booking pages: show times in the visitor's own time zone.
// On first visit (no ?tz= in the address) the browser's zone is picked and the page reloads
// with it; changing the chooser reloads with the chosen zone. No inline script (CSP).
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var select = document.querySelector("select[data-auto-submit]");
    if (!select) { return; }
    select.addEventListener("change", function () { select.form.submit(); });
    if (!select.hasAttribute("data-detect-zone")) { return; }
    var params = new URLSearchParams(window.location.search);
    if (params.has("tz")) { return; }
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    if (!zone) { return; }
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
    if (!known) { return; }
    params.set("tz", zone);
    window.location.replace(window.location.pathname + "?" + params.toString());
  });
})();
