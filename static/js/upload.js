// Sends each chosen file straight to storage through presigned URLs, with a progress bar.
(function () {
  "use strict";
  const root = document.getElementById("uploader");
  if (!root) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = root.querySelector(".uploads");

  async function api(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || "The upload could not start.");
    return data;
  }

  function put(url, blob, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => (xhr.status < 300 ? resolve(xhr.getResponseHeader("ETag") || "")
                                            : reject(new Error("Storage refused the upload.")));
      xhr.onerror = () => reject(new Error("The connection dropped."));
      xhr.send(blob);
    });
  }

  async function putWithRetry(url, blob, onProgress, attempts = 3) {
    for (let i = 1; ; i++) {
      try { return await put(url, blob, onProgress); }
      catch (err) { if (i >= attempts) throw err; await new Promise((r) => setTimeout(r, 1000 * i)); }
    }
  }

  async function upload(file) {
    const row = document.createElement("li");
    row.innerHTML = '<span class="name"></span> <progress max="100" value="0"></progress> <span class="state">waiting</span>';
    row.querySelector(".name").textContent = file.name;
    row.querySelector("progress").setAttribute("aria-label", "Upload of " + file.name);
    list.appendChild(row);
    const bar = row.querySelector("progress"), state = row.querySelector(".state");
    try {
      const target = await api(root.dataset.startUrl, { filename: file.name, size: file.size });
      state.textContent = "uploading";
      const etags = [];
      let done = 0;
      for (let i = 0; i < target.urls.length; i++) {
        const chunk = file.slice(i * target.part_size, (i + 1) * target.part_size);
        etags.push(await putWithRetry(target.urls[i], chunk, (loaded) => {
          bar.value = Math.round(((done + loaded) / file.size) * 100);
        }));
        done += chunk.size;
      }
      const completeUrl = root.dataset.startUrl + "/" + target.item.id + "/complete";
      await api(completeUrl, { etags: target.method === "multipart" ? etags : [] });
      bar.value = 100;
      state.textContent = "uploaded, checking…";
    } catch (err) {
      row.classList.add("failed");
      state.textContent = err.message;
    }
  }

  root.querySelector("input[type=file]").addEventListener("change", async (event) => {
    for (const file of event.target.files) await upload(file);
    setTimeout(() => window.location.reload(), 1500);
  });
})();
