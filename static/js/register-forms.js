/* What the register page's upload scripts share: sizes in decimal units (as
   the Hub shows them) and the error list beside a field, with a link to an
   existing registration when the upload is a duplicate. */
(function () {
  "use strict";
  function fmt(n) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return i === 0 ? n + " B" : (n < 100 ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
  }

  /* showErrors(form, input, errorsEl, linkId) returns function (messages, duplicateUrl). */
  function errorList(form, input, errors, linkId) {
    return function (list, link) {
      errors.textContent = "";
      list.forEach(function (msg) {
        var li = document.createElement("li");
        li.textContent = msg;
        if (link) {
          li.appendChild(document.createTextNode(" "));
          var a = document.createElement("a");
          a.href = link; a.textContent = form.dataset.msgExisting;
          if (linkId) a.id = linkId;
          li.appendChild(a);
        }
        errors.appendChild(li);
      });
      input.setAttribute("aria-invalid", list.length ? "true" : "false");
    };
  }

  window.cfmRegister = {fmt: fmt, errorList: errorList};
})();
