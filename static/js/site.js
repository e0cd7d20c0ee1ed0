// Site-wide behaviour: the account menu (a <details>) closes on Escape, on a click outside
// it and when keyboard focus leaves it; table cells carry their column's heading, so that on a
// phone each row reads as a card (attune.css). Everything works without this file; it only
// tidies up.
(function () {
  "use strict";
  function closeMenus(except) {
    document.querySelectorAll("details.account-menu[open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }

  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest ? event.target.closest("details.account-menu") : null);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.account-menu[open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });

  document.addEventListener("focusin", function (event) {
    var inside = event.target.closest ? event.target.closest("details.account-menu") : null;
    closeMenus(inside);
  });

  function labelTables() {
    document.querySelectorAll("main table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.replace(/\s+/g, " ").trim();
      });
      if (!heads.length) return;
      table.classList.add("stacks");
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, index) {
          if (heads[index] && cell.dataset.label !== heads[index]) cell.dataset.label = heads[index];
        });
      });
    });
  }
  labelTables();
  var main = document.querySelector("main");
  if (main && window.MutationObserver) {
    new MutationObserver(labelTables).observe(main, { childList: true, subtree: true });
  }
})();
