/* Register a local model folder without uploading its weights.

   For each .safetensors file the browser reads the 8-byte little-endian
   header length and then the JSON header with File.slice (a few kilobytes
   of a multi-gigabyte file); small files the inspection reads whole
   (config.json, tokenizer files, tsfm_config.json, the index) are sent as
   they are; every other file is sent as its name and size only. So a 15 GB
   model registers in seconds. The server (registry.forms.FolderForm)
   checks every part against the manifest again. */
(function () {
  "use strict";
  var form = document.getElementById("folder-form");
  if (!form || !window.cfmRegister) return;
  var input = document.getElementById("folder-input");
  var submit = document.getElementById("folder-submit");
  var errors = document.getElementById("folder-errors");
  var preview = document.getElementById("folder-preview");
  var rows = document.getElementById("folder-rows");
  var summary = document.getElementById("folder-summary");
  var statusEl = document.getElementById("folder-status");
  var maxHeader = Number(form.dataset.maxHeader);
  var maxSmall = Number(form.dataset.maxSmall);
  var maxUpload = Number(form.dataset.maxUpload);
  var maxFiles = Number(form.dataset.maxFiles);
  var SMALL = /\.(json|txt|model|jinja|tiktoken)$/i;
  var prepared = null;

  var fmt = window.cfmRegister.fmt;
  var showErrors = window.cfmRegister.errorList(form, input, errors, "folder-duplicate-link");

  function readHeader(file) {
    // The 8-byte length, then exactly the header: never the tensor data.
    if (file.size < 8) return Promise.resolve(file.slice(0, file.size));
    return file.slice(0, 8).arrayBuffer().then(function (buf) {
      var n = new DataView(buf).getBigUint64(0, true);
      if (n > BigInt(maxHeader) || n > BigInt(file.size - 8)) {
        return file.slice(0, 8);  // malformed: the server's inspection says why
      }
      return file.slice(0, 8 + Number(n));
    });
  }

  function relPath(file) {
    var p = file.webkitRelativePath || file.name;
    var i = p.indexOf("/");
    return i >= 0 ? p.slice(i + 1) : p;
  }

  function prepare(files) {
    var list = Array.prototype.slice.call(files).filter(function (f) {
      var p = relPath(f);
      return p && !p.split("/").some(function (seg) { return seg.charAt(0) === "."; });
    });
    if (!list.length) { showErrors([form.dataset.msgEmpty]); return Promise.resolve(null); }
    if (list.length > maxFiles) { showErrors([form.dataset.msgTooMany]); return Promise.resolve(null); }
    var top = (list[0].webkitRelativePath || "").split("/")[0] || "model";
    list.sort(function (a, b) { return relPath(a) < relPath(b) ? -1 : 1; });
    return Promise.all(list.map(function (f, i) {
      var path = relPath(f);
      if (/\.safetensors$/i.test(path)) {
        return readHeader(f).then(function (blob) { return {path: path, size: f.size, part: "p" + i, blob: blob, how: "header"}; });
      }
      if (SMALL.test(path) && f.size <= maxSmall) {
        return Promise.resolve({path: path, size: f.size, part: "p" + i, blob: f, how: "whole"});
      }
      return Promise.resolve({path: path, size: f.size, part: null, blob: null, how: "size"});
    })).then(function (entries) {
      var total = 0, upload = 0;
      entries.forEach(function (e) { total += e.size; if (e.blob) upload += e.blob.size; });
      return {folder: top, entries: entries, total: total, upload: upload};
    });
  }

  function render(p) {
    rows.textContent = "";
    var labels = {whole: form.dataset.msgWhole, header: form.dataset.msgHeader, size: form.dataset.msgSize};
    p.entries.forEach(function (e) {
      var tr = document.createElement("tr");
      tr.dataset.how = e.how;
      [e.path, fmt(e.size), labels[e.how], e.blob ? fmt(e.blob.size) : "0 B"].forEach(function (text, col) {
        var td = document.createElement(col === 0 ? "th" : "td");
        if (col === 0) td.scope = "row";
        if (col === 1 || col === 3) td.className = "num";
        if (col === 2) { var s = document.createElement("span"); s.className = "sent sent-" + e.how; s.textContent = text; td.appendChild(s); }
        else td.textContent = text;
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    summary.textContent = form.dataset.msgSummary.replace("{files}", p.entries.length)
      .replace("{total}", fmt(p.total)).replace("{upload}", fmt(p.upload));
    summary.dataset.upload = String(p.upload);
    summary.dataset.total = String(p.total);
    // A parent folder chosen by mistake: config.json sits one level down.
    var hint = document.getElementById("folder-hint");
    var paths = p.entries.map(function (e) { return e.path; });
    var nested = paths.filter(function (x) { return /^[^/]+\/config\.json$/.test(x); });
    if (paths.indexOf("config.json") < 0 && nested.length) {
      hint.textContent = form.dataset.msgNested.replace("{folder}", nested[0].split("/")[0]);
      hint.hidden = false;
    } else {
      hint.hidden = true;
    }
    preview.hidden = false;
  }

  input.addEventListener("change", function () {
    prepared = null;
    submit.disabled = true;
    showErrors([]);
    preview.hidden = true;
    prepare(input.files).then(function (p) {
      if (!p) return;
      if (p.upload > maxUpload) { showErrors([form.dataset.msgTooLarge]); return; }
      prepared = p;
      render(p);
      submit.disabled = false;
    });
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!prepared) { showErrors([form.dataset.msgEmpty]); return; }
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("kind", "folder");
    data.append("account", form.querySelector("[name=account]").value);
    data.append("folder", prepared.folder);
    data.append("manifest", JSON.stringify(prepared.entries.map(function (e) {
      return {path: e.path, size: e.size, part: e.part};
    })));
    prepared.entries.forEach(function (e) {
      if (e.blob) data.append(e.part, e.blob, e.path.split("/").pop());
    });
    submit.disabled = true;
    statusEl.textContent = form.dataset.msgSending;
    fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                        headers: {"X-Requested-With": "fetch", "Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {status: r.status, body: body}; }); })
      .then(function (res) {
        if (res.body.url) { window.location.assign(res.body.url); return; }
        var msgs = [];
        Object.keys(res.body.errors || {}).forEach(function (k) { msgs = msgs.concat(res.body.errors[k]); });
        showErrors(msgs.length ? msgs : [form.dataset.msgFailed], res.body.duplicate && res.body.duplicate.url);
        statusEl.textContent = "";
        submit.disabled = false;
      })
      .catch(function () {
        showErrors([form.dataset.msgFailed]);
        statusEl.textContent = "";
        submit.disabled = false;
      });
  });
})();
