// Stagegate reviewers' console: keyboard shortcuts and clickable queue rows.
// Progressive enhancement only: every action also works without JavaScript.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function focus(id) {
    var el = document.getElementById(id);
    if (el) { el.scrollIntoView({ block: "center" }); el.focus(); }
    return !!el;
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tr.row"));
  var sel = -1;
  function select(i) {
    if (!rows.length) { return; }
    if (sel >= 0) { rows[sel].classList.remove("selected"); }
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows[sel].classList.add("selected");
    rows[sel].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row) {
    row.addEventListener("click", function (e) {
      if (e.target.closest("a, button, input, select, textarea")) { return; }
      window.location.href = row.getAttribute("data-href");
    });
  });
  // Filters apply as soon as one changes.
  var filters = document.getElementById("filters");
  if (filters) {
    filters.addEventListener("change", function () { filters.submit(); });
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) { return; }
    var help = document.getElementById("shortcuts");
    switch (e.key) {
      case "?": if (help) { help.hidden = !help.hidden; } break;
      case "Escape": if (help) { help.hidden = true; } break;
      case "/": if (focus("f-trial")) { e.preventDefault(); } break;
      case "j": select(sel + 1); break;
      case "k": select(sel - 1); break;
      case "o": case "Enter":
        if (sel >= 0) { window.location.href = rows[sel].getAttribute("data-href"); }
        break;
      case "c": {
        var f = document.getElementById("claim-form");
        if (f) { f.submit(); }
        break;
      }
      case "y": if (focus("confirm-severity")) { e.preventDefault(); } break;
      case "d": if (focus("dismiss-reason")) { e.preventDefault(); } break;
      case "e": if (focus("escalate-reason")) { e.preventDefault(); } break;
      case "m": if (focus("comment-body")) { e.preventDefault(); } break;
      case "g": window.location.href = "/console/"; break;
      default: return;
    }
  });
})();
