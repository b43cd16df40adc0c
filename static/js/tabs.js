/* Accessible tabs (WAI-ARIA pattern): without JavaScript every panel shows;
   with it, one panel at a time, arrow keys move between tabs. */
(function () {
  "use strict";
  document.querySelectorAll("[data-tabs]").forEach(function (root) {
    var list = root.querySelector("[role=tablist]");
    var tabs = Array.prototype.slice.call(root.querySelectorAll("[role=tab]"));
    if (!list || !tabs.length) return;
    list.hidden = false;
    root.classList.add("tabs-on");

    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      });
      if (focus) tab.focus();
      var url = new URL(window.location.href);
      url.searchParams.set("via", tab.dataset.kind);
      window.history.replaceState(null, "", url);
      root.querySelectorAll("input[name=via]").forEach(function (i) { i.value = tab.dataset.kind; });
    }

    var current = tabs.filter(function (t) { return t.getAttribute("aria-selected") === "true"; })[0] || tabs[0];
    select(current, false);
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (e) {
        var next = null;
        if (e.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        else if (e.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        else if (e.key === "Home") next = tabs[0];
        else if (e.key === "End") next = tabs[tabs.length - 1];
        if (next) { e.preventDefault(); select(next, true); }
      });
    });
  });
})();
