// Tells the server the browser's time zone (cfm/web/middleware.py renders times in it, zone named).
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone) return;
    var current = (document.cookie.match(/(?:^|; )cfm_tz=([^;]*)/) || [])[1];
    if (current && decodeURIComponent(current) === zone) return;
    document.cookie = "cfm_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
  } catch (e) { /* no Intl: times stay in UTC, named as such */ }
})();
