// Polls the run's status and updates progress, loss chart, log and samples until it ends.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const field = (name) => document.querySelector('[data-field="' + name + '"]');
  const finished = ["succeeded", "failed", "cancelled"];
  let shownSamples = null;
  // A page rendered after the run finished already shows its files: never reload it (the
  // reload below is for pages opened while the run was still going).
  const finishedOnArrival = finished.includes(field("status").textContent.trim());

  // The loss chart (uPlot, static/vendor/uplot): steps along the bottom, loss up the side,
  // both with values, and a cursor that reads out the step and loss under it.
  let chart = null;
  function drawChart(points) {
    const box = field("chart");
    if (points.length < 2 || !window.uPlot) return;
    field("chart-caption").textContent = "Training loss per step";
    const data = [points.map((p) => p[0]), points.map((p) => p[1])];
    // The canvas says nothing to a screen reader: the label carries the same figures.
    const losses = data[1].filter(Number.isFinite);
    box.setAttribute("aria-label", "Training loss per step: steps " + data[0][0] + " to " + data[0][data[0].length - 1] +
      ", loss between " + Math.min(...losses).toFixed(4) + " and " + Math.max(...losses).toFixed(4) +
      ", latest " + losses[losses.length - 1].toFixed(4));
    if (chart) { chart.setData(data); return; }
    const style = getComputedStyle(document.documentElement);
    const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    const axis = { stroke: color("--muted", "#666"), grid: { stroke: color("--line", "#ddd"), width: 1 },
                   ticks: { stroke: color("--line", "#ddd"), width: 1 } };
    chart = new uPlot({
      width: Math.max(box.clientWidth, 200), height: 200,
      scales: { x: { time: false } },
      legend: { show: true },
      axes: [{ ...axis, label: "Step" }, { ...axis, label: "Loss", size: 60 }],
      series: [{ label: "Step" },
               { label: "Loss", stroke: color("--accent", "#4a6cf7"), width: 2,
                 value: (u, v) => v == null ? "—" : v.toFixed(4) }],
    }, data, box);
    box.uplot = chart;  // for the browser tests: the tick values it drew
    new ResizeObserver(() => chart.setSize({ width: Math.max(box.clientWidth, 200), height: 200 })).observe(box);
  }

  function showSamples(names, labels) {
    if (shownSamples === names.length) return;
    shownSamples = names.length;
    const box = field("samples");
    const all = new Set(names);
    const url = (name) => root.dataset.sampleUrl.replace("NAME", encodeURIComponent(name));
    // A clip shows as its animated webp preview linking to the mp4 (as the page renders it).
    const tiles = names.filter((n) => !(n.endsWith(".mp4") && all.has(n.slice(0, -4) + ".webp")));
    box.replaceChildren(...tiles.slice(-8).map((name) => {
      const text = labels[name] || "Sample " + name;
      const figure = document.createElement("figure");
      figure.className = "sample";
      const caption = document.createElement("figcaption");
      caption.textContent = text;
      figure.append(tile(name, text, url, all), caption);
      return figure;
    }));
  }

  function tile(name, text, url, all) {
    if (name.endsWith(".mp4")) {
      const clip = document.createElement("video");
      Object.assign(clip, { src: url(name), controls: true, muted: true, loop: true, playsInline: true, preload: "metadata", width: 192, height: 192 });
      clip.setAttribute("aria-label", text);
      return clip;
    }
    const img = document.createElement("img");
    img.src = url(name);
    img.alt = text;
    img.width = 192; img.height = 192;
    const mp4 = name.slice(0, -5) + ".mp4";
    if (!name.endsWith(".webp") || !all.has(mp4)) return img;
    const link = document.createElement("a");
    link.href = url(mp4); link.title = "Open the MP4";
    img.alt += " (animated preview; opens the MP4)";
    link.append(img);
    return link;
  }

  // The checkpoint links, as the server lists them now (they rotate, and a cancelled run
  // saves one where it stopped): each checkpoint's files in both formats (per expert).
  function showCheckpoints(checkpoints, downloads) {
    const box = field("checkpoints");
    const files = checkpoints.flatMap((checkpoint) => checkpoint.files);
    const shown = Array.from(box.querySelectorAll("a"), (a) => a.dataset.name);
    if (shown.join() !== files.map((file) => file.name).join()) {
      box.replaceChildren(...files.map((file) => {
        const link = document.createElement("a");
        link.href = root.dataset.checkpointUrl.replace("NAME", encodeURIComponent(file.name));
        link.dataset.name = file.name;
        link.textContent = file.label;
        return link;
      }));
    }
    field("no-files").hidden = files.length > 0 || downloads.length > 0;
  }

  async function poll() {
    let run;
    try {
      const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      if (response.status === 401) return window.location.reload();  // signed out: to sign-in
      if (!response.ok) throw new Error(String(response.status));
      run = await response.json();
    } catch (err) { return setTimeout(poll, 5000); }
    field("status").textContent = run.status;
    field("status").className = "badge badge-" + run.status;
    field("queue").textContent = run.queue_position ? "· position " + run.queue_position + " in the queue" : "";
    field("step").textContent = run.step;
    field("loss").textContent = run.loss == null ? "—" : run.loss.toFixed(4);
    field("eta").textContent = run.eta_seconds == null ? "—" : "about " + attuneDuration(run.eta_seconds);
    field("gpu").textContent = run.gpu_time;
    field("log").textContent = run.log.join("\n");
    root.querySelector("progress").value = run.step;
    drawChart(run.loss_curve);
    if (run.samples.length) showSamples(run.samples, run.sample_labels || {});
    showCheckpoints(run.checkpoint_downloads, run.downloads);
    if (finished.includes(run.status)) {
      const cancel = field("cancel");
      if (cancel) cancel.hidden = true;  // nothing left to cancel
      if (!finishedOnArrival && (run.downloads.length || run.error)) window.location.reload();
      return;
    }
    setTimeout(poll, 1500);
  }
  poll();
})();

// Generations still rendering: poll each one and reload once it is done.
(function () {
  "use strict";
  const pending = Array.from(document.querySelectorAll("[data-generation-url]"))
    .filter((li) => /queued|running/.test(li.querySelector(".badge").textContent));
  if (!pending.length) return;
  async function poll() {
    for (const li of pending) {
      const response = await fetch(li.dataset.generationUrl, { credentials: "same-origin" });
      if (response.ok && !/queued|running/.test((await response.json()).status)) {
        window.location.reload();
        return;
      }
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
