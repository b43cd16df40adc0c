// A form shown again with errors: put the focus on its error summary (partials/error_summary.html).
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary && document.activeElement !== summary) summary.focus();
});
