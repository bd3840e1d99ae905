// m365sync dashboard: a few progressive enhancements. Every page works without them.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function fetchFragment(url, options) {
  const headers = Object.assign({ "X-Requested-With": "fetch", "X-CSRF-Token": csrfToken() }, (options || {}).headers);
  return fetch(url, Object.assign({ credentials: "same-origin" }, options, { headers: headers }))
    .then(function (response) { return response.text(); });
}

// Buttons with data-async-target submit their form in the background and show the answer
// (e.g. Run Test), with a busy state instead of a frozen page.
document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-async-target]");
  if (!button || !button.form) { return; }
  event.preventDefault();
  const target = document.querySelector(button.dataset.asyncTarget);
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = button.dataset.busyText || "Working…";
  target.innerHTML = '<p class="progress" role="status"><span class="spinner" aria-hidden="true"></span> ' +
    (button.dataset.busyText || "Working…") + "</p>";
  // A button without formaction posts to its form's action (button.formAction would be the page's URL).
  const action = button.hasAttribute("formaction") ? button.formAction : button.form.action;
  fetchFragment(action, { method: "POST", body: new FormData(button.form) })
    .then(function (html) { target.innerHTML = html; focusFirstFailure(target); })
    .catch(function () { target.innerHTML = '<div class="error-box" role="alert"><p class="error-message">The server did not answer.</p><p class="error-fix">Check your network and try again.</p></div>'; })
    .finally(function () {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = label;
    });
});

// Buttons with data-copy put the text of their target (PowerShell commands) on the clipboard.
document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) { return; }
  const source = document.querySelector(button.dataset.copy);
  if (!source) { return; }
  navigator.clipboard.writeText(source.innerText).then(function () {
    const label = button.firstChild.textContent;
    button.firstChild.textContent = "Copied";
    window.setTimeout(function () { button.firstChild.textContent = label; }, 2000);
  });
});

// Forms with data-confirm ask first (remove, disconnect). A submit button with
// data-busy-text shows it while the server works (Save runs the test again).
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
  const button = event.submitter;
  if (button && button.dataset.busyText && !button.dataset.asyncTarget) {
    window.setTimeout(function () {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = button.dataset.busyText;
    }, 0);
  }
});

// Run Test's results put the verdict first and the failures before the passes; the first
// failure (or the verdict, when nothing failed) takes the focus, so it is what a screen
// reader reads and what the panel scrolls to.
function focusFirstFailure(scope) {
  const first = scope.querySelector(".check-failed, .check-warning") || scope.querySelector(".verdict");
  if (!first) { return false; }
  if (!first.hasAttribute("tabindex")) { first.setAttribute("tabindex", "-1"); }
  first.focus();
  first.scrollIntoView({ block: "nearest" });
  return true;
}

// The browser's time zone, for the server to show times in (unless the profile names one).
// Kept in a cookie for a year; the sign-in page sets it, so the first page after it is right.
function rememberTimeZone() {
  let zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (error) { return; }
  if (!zone) { return; }
  const value = encodeURIComponent(zone);
  if (document.cookie.split("; ").indexOf("m365sync_tz=" + value) !== -1) { return; }
  document.cookie = "m365sync_tz=" + value + "; path=/; max-age=31536000; samesite=lax" +
    (window.location.protocol === "https:" ? "; secure" : "");
}
rememberTimeZone();

// At phone width the side navigation folds into its "Menu" (it is open without script).
function foldNavigation() {
  const drawer = document.querySelector("[data-nav-drawer]");
  if (!drawer || !window.matchMedia) { return; }
  const phone = window.matchMedia("(max-width: 760px)");
  drawer.open = !phone.matches;
  phone.addEventListener("change", function () { drawer.open = !phone.matches; });
}

// Elements with data-poll-url refresh themselves (sync status during a first sync).
function startPolling(element) {
  const seconds = Number(element.dataset.pollSeconds || "5");
  window.setInterval(function () {
    if (document.hidden || element.contains(document.activeElement)) { return; }
    fetchFragment(element.dataset.pollUrl).then(function (html) { element.innerHTML = html; });
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", function () {
  document.documentElement.classList.add("js");
  foldNavigation();
  document.querySelectorAll("[data-poll-url]").forEach(startPolling);
  const panel = document.querySelector("[data-side-panel]");
  if (panel) {
    const results = panel.querySelector(".test-results");
    const heading = panel.querySelector("h2");
    if (!(results && focusFirstFailure(results)) && heading) { heading.focus(); }
    document.addEventListener("keydown", function (event) {
      const close = panel.querySelector("[data-panel-close]");
      if (event.key === "Escape" && close) { window.location.href = close.href; }
    });
  }
});
