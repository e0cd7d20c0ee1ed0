// Fills the advanced fields' placeholders from the chosen preset and shows the GPU estimate.
(function () {
  "use strict";
  const form = document.getElementById("new-run");
  if (!form) return;
  const presets = JSON.parse(form.dataset.presets);
  const hints = JSON.parse(form.dataset.resolutionHints), limits = JSON.parse(form.dataset.presetLimits);
  const family = form.querySelector("#family"), preset = form.querySelector("#preset");
  const out = document.getElementById("estimate");

  function chosen() { return (presets[family.value] || {})[preset.value] || {}; }

  function fillPlaceholders() {
    const defaults = chosen();
    for (const [name, value] of Object.entries(defaults)) {
      const input = form.querySelector("#" + name);
      if (input) input.placeholder = String(value);
    }
    // A preset the base model has no use for stays listed, greyed out, and says why.
    for (const option of preset.options) {
      option.dataset.label = option.dataset.label || option.textContent;
      option.disabled = !(option.value in (presets[family.value] || {}));
      const why = limits[option.value] || "not for this base model";
      option.textContent = option.dataset.label + (option.disabled ? " (" + why + ")" : "");
    }
    if (preset.selectedOptions[0] && preset.selectedOptions[0].disabled) preset.value = Object.keys(presets[family.value] || {})[0];
    const hint = form.querySelector("#resolution").closest(".field").querySelector(".hint");
    if (hint && hints[family.value]) hint.textContent = hints[family.value];
    estimate();
  }

  async function estimate() {
    const steps = parseInt(form.querySelector("#steps").value || chosen().steps, 10);
    if (!steps) return;
    const url = form.dataset.estimateUrl + "?family=" + encodeURIComponent(family.value) + "&steps=" + steps;
    const response = await fetch(url, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) { out.textContent = data.error; return; }
    const basis = data.measured_runs ? "from the last " + (data.measured_runs === 1 ? "run" : data.measured_runs + " runs") + " of this model here"
                                     : "from our benchmark of this model";
    let text = "Estimated GPU time: about " + attuneDuration(data.gpu_seconds) + " (" + basis + ").";
    if (data.left_seconds != null) {
      text += " You have " + attuneDuration(data.left_seconds) + " left this period";
      text += data.left_after_seconds >= 0 ? "; this run leaves " + attuneDuration(data.left_after_seconds) + "."
                                           : (data.overage ? "; the rest is billed as overage." : "; this run does not fit.");
    }
    out.textContent = text;
  }

  family.addEventListener("change", fillPlaceholders);
  preset.addEventListener("change", fillPlaceholders);
  form.querySelector("#steps").addEventListener("change", estimate);
  fillPlaceholders();
})();
