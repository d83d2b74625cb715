// Reloads the live part of a page every data-refresh seconds, in place:
// the page works without it (a <noscript> refresh), it only keeps the
// scroll position and any form being filled in.
(function () {
  "use strict";
  var seconds = Number(document.body.dataset.refresh);
  if (!seconds) return;
  function busy() {
    var el = document.activeElement;
    return el && el.closest("#live") && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName);
  }
  function refresh() {
    if (document.hidden || busy()) return schedule();
    fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live"), live = document.getElementById("live");
        if (fresh && live && !busy()) live.replaceWith(fresh);
        var clock = doc.querySelector(".clock"), old = document.querySelector(".clock");
        if (clock && old) old.replaceWith(clock);
        // A page that stopped changing (a rebuild done) stops refreshing.
        if (doc.body.dataset.refresh) schedule();
      })
      .catch(schedule);
  }
  function schedule() { setTimeout(refresh, seconds * 1000); }
  schedule();
})();
