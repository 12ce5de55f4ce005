// The imgenhance web page: builds its form from GET /v1/models, submits one job per
// image (generate: one job per click), follows each job's progress, shows the result
// against the upload with a before/after slider and offers it for download.
// A plain ES module with no dependencies. URLs are relative to the page, so it also
// works behind a proxy that serves the gateway under a path prefix.

const KEY_STORAGE = "imgenhance.apiKey";
const TASKS = {
  "super-resolve": "Super-resolve",
  denoise: "Denoise",
  "style-transfer": "Style transfer",
  generate: "Generate",
};
const EXTENSIONS = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "application/zip": "zip" };
const RETRIES = 3; // 429 / 503 answers with Retry-After are retried this many times

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let cards = [];

// ---------------------------------------------------------------- API calls

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The problem+json `detail` of a refused request (or its status line). */
async function problem(response) {
  let detail = `${response.status} ${response.statusText}`.trim();
  if ((response.headers.get("content-type") || "").includes("json")) {
    try {
      const body = await response.json();
      detail = body.detail || body.title || detail;
    } catch {
      // not JSON after all: keep the status line
    }
  }
  return new ApiError(response.status, detail);
}

let pendingKey = null; // one question at a time, however many requests were refused

function askKey(refused) {
  pendingKey ??= new Promise((resolve) => {
    const dialog = $("key-dialog");
    $("key-reason").textContent = refused
      ? "That key was refused. Enter a valid API key for this service."
      : "This service needs an API key. It is kept in this browser tab only (sessionStorage).";
    $("api-key").value = "";
    dialog.dataset.asked = String(Number(dialog.dataset.asked || 0) + 1);
    dialog.addEventListener(
      "close",
      () => {
        pendingKey = null;
        const key = dialog.returnValue === "ok" ? $("api-key").value.trim() : "";
        if (key) sessionStorage.setItem(KEY_STORAGE, key);
        resolve(key);
      },
      { once: true },
    );
    dialog.showModal();
  });
  return pendingKey;
}

/** fetch() with the session's API key; asks for the key on 401 and waits out Retry-After. */
async function api(path, init = {}) {
  let retries = RETRIES;
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const headers = new Headers(init.headers);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path.replace(/^\//, ""), { ...init, headers });
    } catch (err) {
      throw new ApiError(0, `The service did not answer (${err.message}).`);
    }
    if (response.status === 401) {
      if (sessionStorage.getItem(KEY_STORAGE) !== key) continue; // another request got a new key meanwhile
      sessionStorage.removeItem(KEY_STORAGE);
      if (await askKey(Boolean(key))) continue;
      throw await problem(response);
    }
    const wait = Number(response.headers.get("retry-after"));
    if ((response.status === 429 || response.status === 503) && wait > 0 && retries-- > 0) {
      await sleep(Math.min(wait, 60) * 1000);
      continue;
    }
    if (!response.ok) throw await problem(response);
    return response;
  }
}

// ---------------------------------------------------------------- the form

function option(value, text, selected = false) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = text;
  el.selected = selected;
  return el;
}

function defaultCard(task) {
  return cards.find((c) => c.task === task && c.default) || cards.find((c) => c.task === task);
}

function modelLabel(card) {
  const facts = [];
  if (card.task === "super-resolve") facts.push(`x${card.scale}`);
  if (card.variant) facts.push(card.variant);
  if (card.default) facts.push("default");
  return `${card.id} (${facts.join(", ")})`;
}

function showRows() {
  const task = $("task").value;
  for (const el of document.querySelectorAll("[data-task]")) {
    el.hidden = !el.dataset.task.split(" ").includes(task);
  }
  $("model-row").hidden = task === "style-transfer"; // the style names the model
  const walk = task === "generate" && $("interpolate").checked;
  for (const el of document.querySelectorAll("[data-walk]")) el.hidden = !walk;
  $("style-image-row").hidden = task !== "style-transfer" || $("style").value !== "";
}

function fillModels() {
  const task = $("task").value;
  const models = cards.filter((c) => c.task === task);
  const fallback = defaultCard(task);
  $("model").replaceChildren(
    option("", task === "super-resolve" ? "default for the scale" : `default (${fallback?.id ?? "none"})`),
    ...models.map((c) => option(c.id, modelLabel(c))),
  );
}

function fillScales() {
  const scales = [...new Set(cards.filter((c) => c.task === "super-resolve").map((c) => c.scale))].sort((a, b) => b - a);
  $("scale").replaceChildren(...scales.map((s) => option(String(s), `x${s}`, s === 4)));
}

function fillStyles() {
  const named = cards.filter((c) => c.task === "style-transfer" && c.style);
  const anyStyle = cards.some((c) => c.task === "style-transfer" && !c.style);
  $("style").replaceChildren(
    ...named.map((c) => option(c.style.name, `${c.style.title}, ${c.style.artist}`)),
    ...(anyStyle ? [option("", "Any picture: upload a style picture")] : []),
  );
}

function fillClasses() {
  const card = cards.find((c) => c.id === $("model").value) || defaultCard("generate");
  const classes = card?.generator?.classes ?? [];
  $("class").replaceChildren(option("", "mixed (image i gets class i mod C)"), ...classes.map((c) => option(c, c)));
  $("class-row").hidden = $("task").value !== "generate" || classes.length === 0;
}

function onTaskChange() {
  fillModels();
  showRows();
  fillClasses();
  $("scale").disabled = false;
}

function onModelChange() {
  const card = cards.find((c) => c.id === $("model").value);
  if ($("task").value === "super-resolve") {
    // A named model has one scale: show it, and send the model alone.
    if (card) $("scale").value = String(card.scale);
    $("scale").disabled = Boolean(card);
  }
  fillClasses();
}

async function loadModels() {
  try {
    cards = (await (await api("/v1/models")).json()).models;
  } catch (err) {
    $("form-status").textContent = `Could not load the models: ${err.message}`;
    return;
  }
  const tasks = Object.keys(TASKS).filter((t) => cards.some((c) => c.task === t));
  $("task").replaceChildren(...tasks.map((t) => option(t, TASKS[t])));
  fillScales();
  fillStyles();
  onTaskChange();
  $("task").disabled = false;
  $("start").disabled = tasks.length === 0;
  $("form-status").textContent = tasks.length ? "" : "This service has no models installed.";
}

function showChosen() {
  const names = [...$("files").files].map((f) => f.name);
  $("chosen").textContent = names.length ? `${names.length} chosen: ${names.join(", ")}` : "";
}

/** The multipart body of one upload, with only the fields its route takes (others are 422). */
function imageForm(task, file) {
  const form = new FormData();
  form.append("image", file, file.name);
  if ($("output-format").value) form.append("output_format", $("output-format").value);
  if (task === "super-resolve") {
    if ($("model").value) form.append("model", $("model").value);
    else form.append("scale", $("scale").value);
  } else if (task === "denoise") {
    if ($("model").value) form.append("model", $("model").value);
    form.append("artifacts", $("artifacts").value);
    if ($("sigma").value !== "") form.append("sigma", $("sigma").value);
    form.append("strength", $("strength").value);
  } else if (task === "style-transfer") {
    if ($("style").value) form.append("style", $("style").value);
    else form.append("style_image", $("style-image").files[0]);
    form.append("strength", $("strength").value);
    form.append("preserve_color", String($("preserve-color").checked));
    form.append("max_side", $("max-side").value);
  }
  return form;
}

function generateRequest() {
  const body = {
    n: $("n").valueAsNumber,
    seed: $("seed").valueAsNumber,
    truncation: Number($("truncation").value),
  };
  if ($("model").value) body.model = $("model").value;
  if ($("class").value !== "" && !$("class-row").hidden) body.class = $("class").value;
  if ($("interpolate").checked) body.interpolate = { to_seed: $("to-seed").valueAsNumber, steps: $("steps").valueAsNumber };
  return body;
}

// ---------------------------------------------------------------- jobs

function baseName(name) {
  return name.replace(/\.[^.]*$/, "") || "image";
}

function resultName(task, job, file, contentType) {
  const ext = EXTENSIONS[contentType] || "bin";
  const p = job.params || {};
  if (task === "generate") {
    const walk = p.interpolate ? `-to${p.interpolate.to_seed}` : "";
    return `${job.model}-seed${p.seed}${walk}.${ext}`;
  }
  const suffix = { "super-resolve": `x${p.scale}`, denoise: "denoised", "style-transfer": p.style || "styled" }[task];
  return `${baseName(file.name)}-${suffix}.${ext}`;
}

/** One entry of the job list: its progress, its error, its result. */
class JobView {
  constructor(title) {
    this.el = $("job-template").content.firstElementChild.cloneNode(true);
    this.el.querySelector(".job-title").textContent = title;
    this.bar = this.el.querySelector("progress");
    this.bar.setAttribute("aria-label", `Progress of ${title}`);
    this.bar.removeAttribute("value"); // indeterminate until the job reports
    this.statusLine = this.el.querySelector(".job-status");
    this.statusLine.textContent = "Sending…";
    $("jobs").prepend(this.el);
    $("no-jobs").hidden = true;
  }

  progress(job) {
    if (job.status === "queued") {
      this.bar.removeAttribute("value");
      this.statusLine.textContent = "Queued";
    } else {
      this.bar.value = job.status === "succeeded" ? 1 : job.progress;
      this.statusLine.textContent =
        job.status === "running" ? `Running: ${Math.round(job.progress * 100)}%` : job.status;
    }
  }

  fail(message) {
    this.bar.hidden = true;
    this.statusLine.textContent = "Failed";
    const error = this.el.querySelector(".job-error");
    error.textContent = message;
    error.hidden = false;
  }

  done(job, before, blob, name) {
    const after = URL.createObjectURL(blob);
    const seconds = job.timings?.run_seconds;
    const size = job.result ? ` ${job.result.width}×${job.result.height}` : "";
    this.statusLine.textContent = `Done${size}${seconds != null ? ` in ${seconds.toFixed(1)} s` : ""}`;
    const link = this.el.querySelector(".download");
    link.href = after;
    link.download = name;
    link.textContent = `Download ${name}`;
    link.hidden = false;
    if (!blob.type.startsWith("image/")) return;
    if (before) this.compare(before, after, job);
    else this.single(after, `Result of ${this.el.querySelector(".job-title").textContent}`);
  }

  single(src, alt) {
    const figure = this.el.querySelector(".single");
    const img = figure.querySelector("img");
    img.src = src;
    img.alt = alt;
    figure.hidden = false;
  }

  compare(file, after, job) {
    const figure = this.el.querySelector(".compare");
    const view = figure.querySelector(".compare-view");
    const beforeImg = view.querySelector(".before");
    const afterImg = view.querySelector(".after");
    const slider = figure.querySelector(".compare-slider");
    afterImg.src = after;
    afterImg.alt = `After: ${file.name}, ${job.task}`;
    beforeImg.alt = `Before: ${file.name}`;
    // A format the browser cannot show (TIFF, say): the result alone.
    beforeImg.addEventListener("error", () => {
      figure.hidden = true;
      this.single(after, afterImg.alt);
    });
    beforeImg.src = URL.createObjectURL(file);
    const move = () => {
      view.style.setProperty("--pos", `${slider.value}%`);
      slider.setAttribute("aria-valuetext", `${slider.value}% before, ${100 - slider.value}% after`);
    };
    slider.addEventListener("input", move);
    const drag = (event) => {
      if (event.type === "pointermove" && !event.buttons) return;
      const box = view.getBoundingClientRect();
      slider.value = String(Math.round(((event.clientX - box.left) / box.width) * 100));
      move();
    };
    view.addEventListener("pointerdown", drag);
    view.addEventListener("pointermove", drag);
    move();
    figure.hidden = false;
  }
}

async function follow(job, view) {
  let delay = 200;
  while (job.status === "queued" || job.status === "running") {
    view.progress(job);
    await sleep(delay);
    delay = Math.min(delay * 1.5, 1000);
    job = await (await api(job.links.self)).json();
  }
  view.progress(job);
  return job;
}

async function run(task, init, file, title) {
  const view = new JobView(title);
  try {
    let job = await (await api(`/v1/jobs/${task}`, { method: "POST", ...init })).json();
    view.el.dataset.jobId = job.id;
    job = await follow(job, view);
    if (job.status !== "succeeded") throw new ApiError(0, job.error || `The job was ${job.status}.`);
    const blob = await (await api(job.links.result)).blob();
    view.done(job, file, blob, resultName(task, job, file, blob.type));
  } catch (err) {
    view.fail(err.message);
  }
}

function start(event) {
  event.preventDefault();
  const task = $("task").value;
  $("form-status").textContent = "";
  if (task === "generate") {
    const body = generateRequest();
    const walk = body.interpolate ? ` to ${body.interpolate.to_seed}` : "";
    run(task, { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }, null,
      `Generate: seed ${body.seed}${walk}`);
    return;
  }
  const files = [...$("files").files];
  if (!files.length) {
    $("form-status").textContent = "Choose or drop one or more images first.";
    $("files").focus();
    return;
  }
  if (task === "style-transfer" && !$("style").value && !$("style-image").files.length) {
    $("form-status").textContent = "Choose a style picture, or a named style.";
    $("style-image").focus();
    return;
  }
  for (const file of files) run(task, { body: imageForm(task, file) }, file, `${TASKS[task]}: ${file.name}`);
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("task").addEventListener("change", onTaskChange);
  $("model").addEventListener("change", onModelChange);
  $("style").addEventListener("change", showRows);
  $("interpolate").addEventListener("change", showRows);
  $("files").addEventListener("change", showChosen);
  for (const id of ["strength", "truncation"]) {
    $(id).addEventListener("input", () => ($(`${id}-value`).textContent = $(id).value));
  }
  $("random-seed").addEventListener("click", () => {
    $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) {
      $("files").files = event.dataTransfer.files;
      showChosen();
    }
  });
  $("job-form").addEventListener("submit", start);
  // Enter in the key field submits the default button, "Use this key"; Cancel is a plain button.
  $("key-cancel").addEventListener("click", () => $("key-dialog").close("cancel"));
}

wire();
loadModels();
