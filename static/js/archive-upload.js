/* Archive upload with a progress bar. An archive over the limit is refused
   before its bytes travel; otherwise it is sent with XMLHttpRequest (fetch
   reports no upload progress) and the server answers JSON: where to go, or
   the errors to show beside the field. Without JavaScript the form posts
   as usual and the page comes back with its errors. */
(function () {
  "use strict";
  var form = document.getElementById("archive-form");
  if (!form || !window.FormData || !window.XMLHttpRequest || !window.cfmRegister) return;
  var input = form.querySelector("input[type=file]");
  var submit = form.querySelector("button[type=submit]");
  var bar = document.getElementById("archive-progress");
  var fill = bar.querySelector("span");
  var label = document.getElementById("archive-progress-label");
  var errors = document.getElementById("archive-errors");

  var fmt = window.cfmRegister.fmt;
  var showErrors = window.cfmRegister.errorList(form, input, errors, "archive-duplicate-link");

  input.addEventListener("change", function () {
    var f = input.files[0];
    var over = f && f.size > Number(form.dataset.maxUpload);
    showErrors(over ? [form.dataset.msgTooLarge] : []);
    submit.disabled = !!over;
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!input.files.length) { showErrors([form.dataset.msgChoose]); return; }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "fetch");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round(100 * e.loaded / e.total);
      fill.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
      label.textContent = form.dataset.msgProgress.replace("{done}", fmt(e.loaded)).replace("{total}", fmt(e.total));
    };
    xhr.onload = function () {
      var body = xhr.response || {};
      if (body.url) { window.location.assign(body.url); return; }
      var msgs = [];
      Object.keys(body.errors || {}).forEach(function (k) { msgs = msgs.concat(body.errors[k]); });
      showErrors(msgs.length ? msgs : [form.dataset.msgFailed], body.duplicate && body.duplicate.url);
      bar.hidden = true; label.textContent = ""; submit.disabled = false;
    };
    xhr.onerror = function () {
      showErrors([form.dataset.msgFailed]);
      bar.hidden = true; label.textContent = ""; submit.disabled = false;
    };
    showErrors([]);
    bar.hidden = false; fill.style.width = "0%"; submit.disabled = true;
    xhr.send(new FormData(form));
  });
})();
