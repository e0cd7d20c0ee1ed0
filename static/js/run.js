// Polls the run's status and updates progress, loss chart, log and samples until it ends.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const field = (name) => document.querySelector('[data-field="' + name + '"]');
  const finished = ["succeeded", "failed", "cancelled"];
  const svgNS = "http://www.w3.org/2000/svg";
  let shownSamples = null;
  // A page rendered after the run finished already shows its files: never reload it (the
  // reload below is for pages opened while the run was still going).
  const finishedOnArrival = finished.includes(field("status").textContent.trim());

  function drawChart(points) {
    const svg = field("chart");
    svg.setAttribute("preserveAspectRatio", "none"); // fill the card's width
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (points.length < 2) return;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sx = (x) => 10 + ((x - x0) / Math.max(x1 - x0, 1)) * 580;
    const sy = (y) => 150 - ((y - y0) / Math.max(y1 - y0, 1e-9)) * 140;
    const line = document.createElementNS(svgNS, "polyline");
    line.setAttribute("points", points.map((p) => sx(p[0]) + "," + sy(p[1])).join(" "));
    line.setAttribute("class", "loss-line");
    svg.appendChild(line);
  }

  function showSamples(names) {
    if (shownSamples === names.length) return;
    shownSamples = names.length;
    const box = field("samples");
    const all = new Set(names);
    const url = (name) => root.dataset.sampleUrl.replace("NAME", encodeURIComponent(name));
    // A clip shows as its animated webp preview linking to the mp4 (as the page renders it).
    const tiles = names.filter((n) => !(n.endsWith(".mp4") && all.has(n.slice(0, -4) + ".webp")));
    box.replaceChildren(...tiles.slice(-8).map((name) => {
      if (name.endsWith(".mp4")) {
        const clip = document.createElement("video");
        Object.assign(clip, { src: url(name), controls: true, muted: true, loop: true, playsInline: true, preload: "metadata", width: 192, height: 192 });
        clip.setAttribute("aria-label", "Sample " + name);
        return clip;
      }
      const img = document.createElement("img");
      img.src = url(name);
      img.alt = "Sample " + name;
      img.width = 192; img.height = 192;
      const mp4 = name.slice(0, -5) + ".mp4";
      if (!name.endsWith(".webp") || !all.has(mp4)) return img;
      const link = document.createElement("a");
      link.href = url(mp4); link.title = "Open the MP4";
      img.alt += " (animated preview; opens the MP4)";
      link.append(img);
      return link;
    }));
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
    field("eta").textContent = run.eta_seconds == null ? "—" : Math.round(run.eta_seconds) + " s";
    field("gpu").textContent = run.used_gpu_seconds;
    field("log").textContent = run.log.join("\n");
    root.querySelector("progress").value = run.step;
    drawChart(run.loss_curve);
    if (run.samples.length) showSamples(run.samples);
    if (finished.includes(run.status)) {
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
