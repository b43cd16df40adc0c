/* Sign-up: the account name and plan matter only when a new account is
   created; without JavaScript they stay enabled and the server decides. */
(function () {
  "use strict";
  var box = document.getElementById("id_create_account");
  if (!box) return;
  var fields = ["id_account_name", "id_plan"].map(function (id) { return document.getElementById(id); });
  function sync() {
    fields.forEach(function (f) {
      if (!f) return;
      f.disabled = !box.checked;
      f.closest(".field").classList.toggle("field-off", !box.checked);
    });
  }
  box.addEventListener("change", sync);
  sync();
})();
