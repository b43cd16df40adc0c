/* Behaviour every page may use, bound by data attributes, so that no page
   needs an inline script or an on* attribute (the Content-Security-Policy
   allows scripts from our own static files only). Listeners sit on the
   document: they also serve content htmx swaps in later.

   <form data-confirm="Really?">        asks before submitting
   <select data-autosubmit>             submits its form on change
   <button data-copy="ID" [data-copied="Copied" data-copy-status="ID2"]>
                                        copies the value or text of #ID
   <input data-select-on-focus>         selects its text on focus */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.submit();
    }
  });

  document.addEventListener("click", function (event) {
    var btn = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
    if (!btn) { return; }
    var source = document.getElementById(btn.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    var text = "value" in source ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(function () {
      if (!btn.dataset.copied) { return; }
      var status = btn.dataset.copyStatus ? document.getElementById(btn.dataset.copyStatus) : null;
      if (status) { status.textContent = btn.dataset.copied; } else { btn.textContent = btn.dataset.copied; }
    });
  });

  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el instanceof HTMLInputElement && el.hasAttribute("data-select-on-focus")) { el.select(); }
  });
})();
