// Polls the run's status and updates the page until the run finishes.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const field = (name) => root.querySelector('[data-field="' + name + '"]');
  const finished = ["succeeded", "failed", "cancelled"];

  async function poll() {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) return setTimeout(poll, 5000);
    const run = await response.json();
    field("status").textContent = run.status;
    field("status").className = "badge badge-" + run.status;
    field("step").textContent = run.step;
    field("loss").textContent = run.loss == null ? "—" : run.loss.toFixed(4);
    field("eta").textContent = run.eta_seconds == null ? "—" : Math.round(run.eta_seconds) + " s";
    root.querySelector("progress").value = run.step;
    if (finished.includes(run.status)) {
      if (run.downloads.length && !field("downloads").children.length) window.location.reload();
      return;
    }
    setTimeout(poll, 2000);
  }
  poll();
})();
