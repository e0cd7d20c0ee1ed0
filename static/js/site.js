// Site-wide behaviour: the account menu (a <details>) closes on Escape, on a click outside
// it and when keyboard focus leaves it. Everything works without this file; it only tidies up.
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
})();
