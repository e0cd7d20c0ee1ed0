// After Stripe Checkout: the redirect proves nothing, so poll until the webhook has
// activated the plan, then go to the subscription page.
(function () {
  "use strict";
  var box = document.getElementById("checkout-pending");
  var state = document.getElementById("checkout-state");
  if (!box || !state) { return; }
  var tries = 0;
  var maxTries = 60;

  function later(ms) { if (tries < maxTries) { setTimeout(poll, ms); } else { giveUp(); } }

  function giveUp() {
    state.textContent = "Stripe has not confirmed yet. Your plan will appear on the " +
      "subscription page as soon as it does.";
  }

  function poll() {
    tries += 1;
    fetch(box.dataset.statusUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (status) {
        if (status.active) {
          state.textContent = "Your " + status.plan_label + " plan is active.";
          box.dataset.active = "true";
          setTimeout(function () { window.location = box.dataset.billingUrl; }, 1200);
        } else {
          later(1500);
        }
      })
      .catch(function () { later(3000); });
  }

  poll();
})();
