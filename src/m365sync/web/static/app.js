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
    .then(function (html) { target.innerHTML = html; })
    .catch(function () { target.innerHTML = '<div class="error-box" role="alert"><p class="error-message">The server did not answer.</p><p class="error-fix">Check your network and try again.</p></div>'; })
    .finally(function () {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = label;
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

// Selects with data-autosubmit submit their form when changed (their button is hidden).
document.addEventListener("change", function (event) {
  if (event.target.matches("select[data-autosubmit]")) { event.target.form.requestSubmit(); }
});

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
  document.querySelectorAll("[data-poll-url]").forEach(startPolling);
  const panel = document.querySelector("[data-side-panel]");
  if (panel) {
    const heading = panel.querySelector("h2");
    if (heading) { heading.focus(); }
    document.addEventListener("keydown", function (event) {
      const close = panel.querySelector("[data-panel-close]");
      if (event.key === "Escape" && close) { window.location.href = close.href; }
    });
  }
});
