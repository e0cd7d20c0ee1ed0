// The dataset page: Uppy's Dashboard sends files straight to storage through URLs the app
// presigns (one PUT for small files, resumable multipart for large ones), same-name .txt files
// become captions, the item grid refreshes while ingest works, captions save inline, and the
// bucket preview is requested and polled.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function call(method, url, body, signal) {
    const options = { method, credentials: "same-origin", signal, headers: { "X-CSRFToken": csrf } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    // Too many requests (429) or briefly unavailable (503): wait as the server asks, then retry.
    for (let attempt = 1; ; attempt++) {
      const response = await fetch(url, options);
      const data = await response.json().catch(() => ({}));
      if (response.ok) return data;
      if ((response.status === 429 || response.status === 503) && attempt < 6) {
        const wait = Math.min(Number(response.headers.get("Retry-After")) || 2 * attempt, 60);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        continue;
      }
      const error = new Error(data.error || "The request failed (" + response.status + ").");
      error.status = response.status;
      throw error;
    }
  }

  // Captions: "<folder>/<name>.txt" pairs with "<folder>/<name>.<any media extension>".
  function pathOf(file) { return (file.meta && file.meta.relativePath) || file.name; }
  function captionKey(path) { return path.replace(/\\/g, "/").replace(/^\/+/, "").replace(/\.[^./]*$/, "").toLowerCase(); }

  const grid = {
    section: document.getElementById("items"),
    timer: null,
    onRefresh: async () => {},
    async refresh() {
      const root = document.getElementById("uploader");
      if (!root || !this.section) return;
      const editing = this.section.contains(document.activeElement) && document.activeElement.tagName === "TEXTAREA";
      const current = document.getElementById("items-grid");
      if (current && !editing) {
        const response = await fetch(root.dataset.gridUrl + "?page=" + current.dataset.page, { credentials: "same-origin" });
        const html = response.ok ? (await response.text()).trim() : current.outerHTML;
        if (current.outerHTML !== html) current.outerHTML = html;
      }
      await this.onRefresh(); // after the grid: its last refresh sees the last outcome too
    },
    pending() {
      const current = document.getElementById("items-grid");
      return current ? Number(current.dataset.pending || 0) : 0;
    },
    watch(busy) {
      clearTimeout(this.timer);
      const tick = async () => {
        await this.refresh().catch(() => {});
        if (busy() || this.pending() > 0) this.timer = setTimeout(tick, 1500);
      };
      this.timer = setTimeout(tick, 500);
    },
  };

  function startUploader(root) {
    if (!window.Uppy) return;
    const base = root.dataset.uploadsUrl;
    const singlePutLimit = Number(root.dataset.singlePutLimit);
    const captions = new Map(); // captionKey -> {path, text: Promise<string>}
    const note = root.querySelector(".caption-note");
    const refusals = root.querySelector(".upload-refusals");
    let uploading = 0;

    // Files refused before any byte was sent (type, size, storage left) leave the uploader and
    // are named here until dismissed: sending them again would only be refused again.
    function refuse(message) {
      const line = document.createElement("li");
      line.textContent = message;
      refusals.querySelector("ul").appendChild(line);
      refusals.hidden = false;
    }
    refusals.querySelector("button").addEventListener("click", () => {
      refusals.querySelector("ul").replaceChildren();
      refusals.hidden = true;
    });

    const uppy = new Uppy.Uppy({
      id: "attune-uploads:" + base, // one recovery store per dataset
      autoProceed: true,
      restrictions: { allowedFileTypes: root.dataset.accept.split(",") },
      onBeforeFileAdded(file) {
        if (!/\.txt$/i.test(file.name)) return true;
        const path = pathOf(file);
        const text = file.data.arrayBuffer().then((buffer) => new TextDecoder("utf-8", { fatal: true }).decode(buffer));
        captions.set(captionKey(path), { path, text });
        return false; // captions travel with their image, not as uploads
      },
    });
    window.attuneUppy = uppy;
    uppy.on("restriction-failed", (file, error) => {
      if (file && error.isUserFacing !== false) refuse(pathOf(file) + ": " + error.message);
    });
    uppy.use(Uppy.Dashboard, {
      inline: true,
      target: "#uppy-dashboard",
      height: 360,
      width: "100%",
      showProgressDetails: true,
      proudlyDisplayPoweredByUppy: false,
      fileManagerSelectionType: "both",
      note: "Images, clips, folders or a zip; .txt files become captions.",
    });

    async function takeCaption(file) {
      const entry = captions.get(captionKey(pathOf(file)));
      if (!entry) return undefined;
      captions.delete(captionKey(pathOf(file)));
      try { return (await entry.text).trim(); } catch (err) { note.textContent = entry.path + " is not UTF-8 text; it was not used."; return undefined; }
    }

    // Golden Retriever keeps the files, their items and the parts' upload ids in the browser,
    // so that after a reload or a lost connection an upload goes on where it stopped (files
    // over its 10 MB blob limit come back as "ghosts" to select again) instead of from zero.
    uppy.use(Uppy.GoldenRetriever);
    // Uploads start by themselves here, so a restored upload goes on by itself too, as soon as
    // every file is back (at once, or when its ghost is selected again).
    // Files that had finished (uploaded, or refused after) are in the grid: only unfinished
    // ones come back to the uploader.
    uppy.on("restored", () => {
      const finished = uppy.getFiles().filter((file) => file.progress.uploadComplete);
      if (finished.length) uppy.removeFiles(finished.map((file) => file.id));
      if (!uppy.getFiles().length) uppy.setState({ recoveredState: null });
    });
    let resuming = false;
    uppy.on("state-update", (previous, next) => {
      const files = Object.values(next.files);
      if (!next.recoveredState || resuming || !files.length || files.some((file) => file.isGhost)) return;
      resuming = true;
      setTimeout(() => { uppy.emit("restore-confirmed"); resuming = false; });
    });

    const itemUrl = (key) => base + "/" + encodeURIComponent(key);
    async function create(file, signal) {
      const itemId = uppy.getFile(file.id).meta.itemId;
      if (itemId !== undefined) {
        // Its item exists: fresh URLs for it, not a second item (unless it has gone meanwhile).
        try { return await call("GET", itemUrl(itemId) + "/target", undefined, signal); } catch (err) { if (err.status !== 404) throw err; }
      }
      const body = { filename: file.name, size: file.size, relative_path: pathOf(file), caption: await takeCaption(file) };
      let target;
      try {
        target = await call("POST", base, body, signal);
      } catch (err) {
        if (err.status === 422) {
          refuse(err.message);
          setTimeout(() => removeRefused(file.id));
        }
        throw err;
      }
      uppy.setFileMeta(file.id, { itemId: target.item.id, attuneMethod: target.method });
      return target;
    }

    function removeRefused(fileId) {
      uppy.removeFile(fileId);
      // The refusal is told above; the status bar goes on with the files that remain.
      if (!uppy.getFiles().some((file) => file.error)) uppy.setState({ error: null });
    }

    // Ingest refuses some files after their bytes arrived (not a picture, too long a clip...):
    // those get a red mark and the reason instead of the upload's green tick.
    async function markRejected() {
      const waiting = uppy.getFiles().filter((file) => file.meta.itemId !== undefined && file.progress.uploadComplete && !file.error);
      if (!waiting.length) return;
      const rejected = (await call("GET", root.dataset.itemsUrl + "?status=rejected")).items;
      const reasons = new Map(rejected.map((item) => [item.id, item.reject_reason]));
      for (const file of waiting) {
        if (reasons.has(file.meta.itemId)) uppy.setFileState(file.id, { error: reasons.get(file.meta.itemId) || "Refused." });
      }
    }
    grid.onRefresh = () => markRejected().catch(() => {});

    uppy.use(Uppy.AwsS3, {
      limit: 4,
      retryDelays: [0, 1000, 3000, 5000],
      allowedMetaFields: [],
      shouldUseMultipart: (file) => file.size > singlePutLimit,
      getChunkSize: () => singlePutLimit,
      async getUploadParameters(file, options) {
        const target = await create(file, options && options.signal);
        return { method: "PUT", url: target.urls[0], headers: { "Content-Type": target.content_type } };
      },
      async createMultipartUpload(file) {
        const target = await create(file);
        return { uploadId: target.uploadId, key: target.key };
      },
      async signPart(file, { key, partNumber, signal }) {
        const signed = await call("GET", itemUrl(key) + "/parts/" + partNumber, undefined, signal);
        return { url: signed.url };
      },
      async listParts(file, { key, signal }) {
        return (await call("GET", itemUrl(key) + "/parts", undefined, signal)).parts;
      },
      async completeMultipartUpload(file, { key, parts, signal }) {
        await call("POST", itemUrl(key) + "/complete", { parts }, signal);
        return {};
      },
      async abortMultipartUpload(file, { key }) {
        await call("DELETE", itemUrl(key)).catch(() => {});
      },
    });

    uppy.on("upload", () => { uploading += 1; grid.watch(() => uploading > 0); });
    uppy.on("upload-success", async (file) => {
      const meta = uppy.getFile(file.id).meta;
      if (meta.attuneMethod !== "single") return;
      try {
        await call("POST", itemUrl(meta.itemId) + "/complete", { etags: [] });
      } catch (err) {
        uppy.info(file.name + ": " + err.message, "error", 8000);
      }
    });
    uppy.on("file-removed", (file) => {
      const meta = file.meta || {};
      if (meta.attuneMethod === "single" && file.progress && !file.progress.uploadComplete) {
        call("DELETE", itemUrl(meta.itemId)).catch(() => {});
      }
    });
    uppy.on("complete", async () => {
      uploading = Math.max(0, uploading - 1);
      const left = {};
      for (const entry of captions.values()) {
        try { left[entry.path] = (await entry.text).trim(); } catch (err) { /* reported on use */ }
      }
      captions.clear();
      if (Object.keys(left).length) {
        try {
          const result = await call("POST", root.dataset.captionsUrl, { captions: left });
          note.textContent = result.paired + " caption file(s) matched existing items" +
            (result.unmatched.length ? "; no item is named like " + result.unmatched.join(", ") : ".");
        } catch (err) { note.textContent = err.message; }
      }
      grid.watch(() => uploading > 0);
    });
  }

  function startCaptionEditing() {
    document.addEventListener("change", async (event) => {
      const box = event.target;
      if (!box.matches || !box.matches("textarea.caption")) return;
      const state = box.parentElement.querySelector(".caption-state");
      try {
        await call("PATCH", box.dataset.url, { caption: box.value });
        state.textContent = "saved";
      } catch (err) { state.textContent = err.message; }
    });
  }

  function renderPreview(container, data) {
    const rows = data.items.map((item) => {
      const flag = item.dropped ? "dropped: " + item.reason : (item.flag || "");
      const bucket = item.dropped ? "—" : item.bucket_width + "×" + item.bucket_height;
      const crop = item.dropped ? "—" : item.crop_box.join(", ") + " (" + Math.round(item.crop_fraction * 100) + "% cut)";
      const frames = item.frames == null ? "—" : String(item.frames);
      const tr = document.createElement("tr");
      if (item.dropped) tr.className = "dropped";
      for (const text of [item.filename, item.source_width + "×" + item.source_height, bucket, crop, frames, flag]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      if (flag) tr.lastChild.className = "flag";
      return tr;
    });
    const table = document.createElement("table");
    table.innerHTML = "<thead><tr><th>Item</th><th>Source</th><th>Bucket</th><th>Crop box (left, top, right, bottom)</th><th>Frames kept</th><th>Warning</th></tr></thead>";
    const body = document.createElement("tbody");
    rows.forEach((row) => body.appendChild(row));
    table.appendChild(body);
    container.replaceChildren(table);
  }

  function startPreview(section) {
    const form = section.querySelector("form");
    const family = form.querySelector("select"), resolution = form.querySelector("input");
    const state = section.querySelector(".preview-state"), result = section.querySelector(".preview-result");
    const hint = section.querySelector("#preview-resolution-hint");
    const syncResolution = () => {  // the chosen base model's range, said and enforced
      const limits = family.selectedOptions[0].dataset;
      Object.assign(resolution, { value: limits.resolution, min: limits.min, max: limits.max, step: limits.step });
      hint.textContent = limits.hint;
    };
    family.addEventListener("change", syncResolution);
    syncResolution();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      state.textContent = "Planning…";
      try {
        let data = await call("POST", section.dataset.url, { family: family.value, resolution: Number(resolution.value) });
        while (data.status === "pending") {
          await new Promise((r) => setTimeout(r, 1000));
          data = await call("GET", data.poll);
        }
        if (data.status === "ready") {
          const s = data.summary;
          state.textContent = s.kept + " kept, " + s.dropped + " dropped, " + s.heavily_cropped + " heavily cropped at " + data.resolution + " px.";
          renderPreview(result, data);
        } else {
          state.textContent = data.error || "The preview is out of date; press the button again.";
        }
      } catch (err) { state.textContent = err.message; }
    });
  }

  const uploader = document.getElementById("uploader");
  if (uploader) startUploader(uploader);
  startCaptionEditing();
  const preview = document.getElementById("bucket-preview");
  if (preview) startPreview(preview);
  if (grid.pending() > 0) grid.watch(() => false);
})();
