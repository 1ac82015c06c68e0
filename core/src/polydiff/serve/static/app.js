// polydiff's web page, plain JavaScript so the server ships it without a build step.
// The form is built from GET /v1/modalities (each task's inputs and the JSON schema of its
// options); jobs go to POST /v1/jobs and are followed over GET /v1/jobs/{id}/events. The events
// are read with fetch rather than EventSource because EventSource cannot send the
// Authorization header a token-protected server needs; if the stream fails, the page polls.
"use strict";

const FINAL = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 700;
const STORE_KEY = "polydiff.jobs";
const $ = (id) => document.getElementById(id);

let modalities = [];
const jobs = new Map(); // id -> {el, shown, cancelling, last: the job as last seen}

// -- talking to the server ----------------------------------------------------------------

function authHeaders(extra = {}) {
  const token = $("token").value.trim();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

// The server's one-line `detail`, or the HTTP status when the body is not the server's JSON.
async function failure(reply) {
  let detail = "";
  try {
    detail = (await reply.json()).detail;
  } catch (_) { /* not JSON */ }
  if (typeof detail !== "string" || !detail) detail = `${reply.status} ${reply.statusText}`.trim();
  return new Error(detail);
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body instanceof FormData) {
    init.body = body; // the browser sets the multipart boundary itself
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(path, init);
  if (!reply.ok) throw await failure(reply);
  return reply.json();
}

function showError(message) {
  $("error").textContent = message || "";
}

// -- the form: modality, task, the task's inputs and options -------------------------------

async function loadModalities() {
  try {
    modalities = (await api("GET", "/v1/modalities")).modalities;
  } catch (err) {
    showError(`could not list the modalities: ${err.message}`);
    return false;
  }
  const select = $("modality");
  select.replaceChildren(...modalities.map((m) => new Option(m.name, m.name)));
  if (!modalities.length) showError("the server has no modality installed");
  modalityChanged();
  return true;
}

const currentModality = () => modalities.find((m) => m.name === $("modality").value);
const currentTask = () => (currentModality()?.tasks || []).find((t) => t.name === $("task").value);

function modalityChanged() {
  const modality = currentModality();
  $("modality-hint").textContent = modality ? modality.description : "";
  $("task").replaceChildren(...(modality?.tasks || []).map((t) => new Option(t.name, t.name)));
  taskChanged();
}

function taskChanged() {
  const task = currentTask();
  $("task-hint").textContent = task ? task.description : "";
  buildInputs(task?.needs || []);
  buildOptions(task?.options_schema || {});
}

function field(id, labelText, control, hintText) {
  const wrap = document.createElement("p");
  wrap.className = "field";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = labelText;
  control.id = id;
  wrap.append(label, control);
  if (hintText) {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.id = `${id}-hint`;
    hint.textContent = hintText;
    control.setAttribute("aria-describedby", hint.id);
    wrap.append(hint);
  }
  return wrap;
}

function buildInputs(needs) {
  const fields = needs.map((name) => {
    const input = document.createElement("input");
    input.type = "file";
    input.dataset.input = name;
    input.required = true;
    return field(`input-${name}`, `${name} file (required)`, input, `uploaded as the task's --${name}`);
  });
  $("input-fields").replaceChildren(...fields);
  $("inputs").hidden = !fields.length;
}

// One JSON-schema property, with $ref resolved and `anyOf: [X, null]` read as an optional X.
function describeProperty(prop, root) {
  const deref = (s) => {
    const ref = s && s.$ref;
    if (!ref) return s || {};
    const name = ref.split("/").pop();
    return { ...((root.$defs || root.definitions || {})[name] || {}), ...s, $ref: undefined };
  };
  let spec = deref(prop);
  let nullable = false;
  if (Array.isArray(spec.anyOf)) {
    const branches = spec.anyOf.map(deref);
    nullable = branches.some((b) => b.type === "null");
    const real = branches.find((b) => b.type !== "null") || {};
    spec = { ...real, title: spec.title, description: spec.description, default: spec.default };
  }
  let kind = "json";
  if (Array.isArray(spec.enum)) kind = "enum";
  else if (spec.type === "boolean") kind = "boolean";
  else if (spec.type === "integer" || spec.type === "number") kind = spec.type;
  else if (spec.type === "string") kind = "string";
  return { spec, kind, nullable };
}

function optionControl(name, kind, spec, nullable, required) {
  const has = spec.default !== undefined && spec.default !== null;
  let control;
  if (kind === "enum") {
    control = document.createElement("select");
    if (nullable || !has) control.append(new Option(nullable ? "(none)" : "(choose)", ""));
    spec.enum.forEach((value, i) => control.append(new Option(String(value), String(i))));
    if (has) control.value = String(spec.enum.findIndex((v) => v === spec.default));
  } else if (kind === "boolean") {
    control = document.createElement("input");
    control.type = "checkbox";
    control.checked = spec.default === true;
  } else {
    control = document.createElement("input");
    if (kind === "integer" || kind === "number") {
      control.type = "number";
      control.step = kind === "integer" ? "1" : "any";
      const min = spec.minimum ?? spec.exclusiveMinimum;
      const max = spec.maximum ?? spec.exclusiveMaximum;
      if (min !== undefined) control.min = String(min);
      if (max !== undefined) control.max = String(max);
    } else {
      control.type = "text";
      control.spellcheck = false;
    }
    if (has) control.value = kind === "json" ? JSON.stringify(spec.default) : String(spec.default);
    if (!has && nullable) control.placeholder = "none";
  }
  control.required = required;
  Object.assign(control.dataset, { option: name, kind, nullable: String(nullable) });
  return control;
}

function buildOptions(schema) {
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {}).map(([name, prop]) => {
    const { spec, kind, nullable } = describeProperty(prop, schema);
    const control = optionControl(name, kind, spec, nullable, required.has(name));
    const title = `${spec.title || name}${required.has(name) ? " (required)" : ""}`;
    const bits = [spec.description, kind === "json" ? "JSON" : ""];
    if (spec.default !== undefined && spec.default !== null) bits.push(`default ${JSON.stringify(spec.default)}`);
    const wrap = field(`option-${name}`, title, control, bits.filter(Boolean).join("; "));
    if (kind === "boolean") wrap.classList.add("check");
    return wrap;
  });
  $("option-fields").replaceChildren(...fields);
  $("options").hidden = !fields.length;
}

// -- reading the form into a request -------------------------------------------------------

function numberFrom(text, name, integer) {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`${name}: not a number`);
  if (integer && !Number.isInteger(value)) throw new Error(`${name}: must be a whole number`);
  return value;
}

function optionalNumber(id, name, integer) {
  const text = $(id).value.trim();
  return text === "" ? null : numberFrom(text, name, integer);
}

function optionalText(id) {
  return $(id).value.trim() || null;
}

function readOptions() {
  const options = {};
  for (const control of $("option-fields").querySelectorAll("[data-option]")) {
    const { option: name, kind } = control.dataset;
    if (kind === "boolean") {
      options[name] = control.checked;
      continue;
    }
    const text = control.value.trim();
    if (text === "") continue; // left empty: the server's default (or its "required" message)
    const spec = describeProperty(currentTask().options_schema.properties[name], currentTask().options_schema).spec;
    if (kind === "enum") options[name] = spec.enum[Number(text)];
    else if (kind === "integer" || kind === "number") options[name] = numberFrom(text, name, kind === "integer");
    else if (kind === "string") options[name] = text;
    else {
      try {
        options[name] = JSON.parse(text);
      } catch (_) {
        throw new Error(`${name}: not valid JSON`);
      }
    }
  }
  return options;
}

function readRequest() {
  const n = optionalNumber("n", "n", true);
  return {
    modality: $("modality").value,
    task: $("task").value,
    prompt: $("prompt").value.trim() || null,
    n: n === null ? 1 : n,
    seed: optionalNumber("seed", "seed", true),
    steps: optionalNumber("steps", "steps", true),
    sampler: optionalText("sampler"),
    spacing: optionalText("spacing"),
    guidance: optionalNumber("guidance", "guidance", false),
    options: readOptions(),
  };
}

// JSON when there is nothing to upload, else multipart: the request JSON plus the files.
function requestBody(request) {
  const files = [...$("input-fields").querySelectorAll("input[type=file]")].filter((i) => i.files.length);
  if (!files.length) return request;
  const form = new FormData();
  form.append("request", JSON.stringify(request));
  for (const input of files) form.append(input.dataset.input, input.files[0], input.files[0].name);
  return form;
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const button = $("submit");
  let request;
  try {
    request = readRequest();
  } catch (err) {
    showError(err.message);
    return;
  }
  button.disabled = true;
  $("form-status").textContent = "submitting ...";
  try {
    const accepted = await api("POST", "/v1/jobs", requestBody(request));
    $("form-status").textContent = `job ${accepted.id.slice(0, 8)} queued at position ${accepted.position}`;
    remember(accepted.id);
    addJob({ id: accepted.id, status: accepted.status, position: accepted.position, request,
             progress: { step: 0, steps: 0 }, files: [], error: null });
  } catch (err) {
    $("form-status").textContent = "";
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

// -- the jobs of this session --------------------------------------------------------------

function remembered() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || "[]");
  } catch (_) {
    return [];
  }
}

function remember(id) {
  sessionStorage.setItem(STORE_KEY, JSON.stringify([...remembered().filter((x) => x !== id), id]));
}

function forget(id) {
  sessionStorage.setItem(STORE_KEY, JSON.stringify(remembered().filter((x) => x !== id)));
}

function make(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function addJob(job) {
  const short = job.id.slice(0, 8);
  const el = make("li", "job");
  el.dataset.jobId = job.id;
  el.setAttribute("aria-label", `job ${short}`);
  const head = make("div", "job-head");
  const what = job.request ? `${job.request.modality} / ${job.request.task}` : "job";
  head.append(make("strong", "", what), make("code", "", short), make("span", "status", job.status));
  const prompt = make("p", "job-prompt", job.request?.prompt || "");
  const bar = make("progress", "bar");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `progress of job ${short}`);
  const steps = make("span", "steps hint");
  const cancel = make("button", "cancel", "cancel");
  cancel.type = "button";
  cancel.setAttribute("aria-label", `cancel job ${short}`);
  cancel.addEventListener("click", () => cancelJob(job.id));
  const row = make("div", "job-progress");
  row.append(bar, steps, cancel);
  el.append(head, prompt, row, make("p", "job-error error"), make("div", "results"));
  $("jobs").prepend(el);
  $("no-jobs").hidden = true;
  jobs.set(job.id, { el, shown: false, cancelling: false, last: job });
  render(job);
  if (!FINAL.has(job.status)) follow(job.id);
}

function render(job) {
  const entry = jobs.get(job.id);
  if (!entry) return;
  const { el } = entry;
  entry.last = job;
  el.dataset.status = job.status;
  let status = job.status;
  if (job.status === "queued" && job.position !== null && job.position !== undefined) {
    status += ` (position ${job.position})`;
  }
  if (entry.cancelling && !FINAL.has(job.status)) status += ", cancelling ...";
  el.querySelector(".status").textContent = status;
  const { step = 0, steps = 0 } = job.progress || {};
  const bar = el.querySelector(".bar");
  if (job.status === "done") bar.value = 1;
  else if (steps > 0) bar.value = Math.min(step / steps, 1);
  el.querySelector(".steps").textContent = steps > 0 ? `step ${step} of ${steps}` : "";
  el.querySelector(".cancel").hidden = FINAL.has(job.status);
  el.querySelector(".cancel").disabled = Boolean(entry.cancelling);
  if (job.error) el.querySelector(".job-error").textContent = job.error;
  if (job.status === "done" && !entry.shown) {
    entry.shown = true;
    showFiles(el, job);
  }
}

function jobProblem(id, message) {
  const entry = jobs.get(id);
  if (entry) entry.el.querySelector(".job-error").textContent = message;
}

// Follow one job to its end: the event stream first, polling if the stream is unavailable.
async function follow(id) {
  try {
    if (await stream(id)) return;
  } catch (err) {
    if (err.status === 404) {
      jobProblem(id, err.message);
      return;
    }
  }
  await poll(id);
}

// Read the server-sent events of one job; true once a final status was seen.
async function stream(id) {
  const reply = await fetch(`/v1/jobs/${id}/events`, { headers: authHeaders({ Accept: "text/event-stream" }) });
  if (!reply.ok) {
    const err = await failure(reply);
    err.status = reply.status;
    throw err;
  }
  if (!reply.body) return false;
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let finished = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
      if (!data.length) continue;
      const job = JSON.parse(data.join("\n"));
      render(job);
      finished = finished || FINAL.has(job.status);
    }
  }
  return finished;
}

async function poll(id) {
  for (;;) {
    let job;
    try {
      job = await api("GET", `/v1/jobs/${id}`);
    } catch (err) {
      jobProblem(id, err.message);
      if (/no such job/.test(err.message)) return;
      await new Promise((ok) => setTimeout(ok, POLL_MS * 4));
      continue;
    }
    render(job);
    if (FINAL.has(job.status)) return;
    await new Promise((ok) => setTimeout(ok, POLL_MS));
  }
}

async function cancelJob(id) {
  try {
    const reply = await api("DELETE", `/v1/jobs/${id}`);
    const entry = jobs.get(id);
    if (entry && !FINAL.has(entry.el.dataset.status)) {
      entry.cancelling = true; // a running job stops at its next sampler step
      render({ ...entry.last, status: reply.status });
    }
  } catch (err) {
    jobProblem(id, err.message);
  }
}

// Results are fetched with the token header (an <img src> could not send it) and shown from
// blob URLs: images (PNG, GIF) inline, WAV as an audio player, text as text, all downloadable.
async function showFiles(el, job) {
  const results = el.querySelector(".results");
  for (const file of job.files || []) {
    const figure = make("figure", "result");
    const caption = make("figcaption");
    figure.append(caption);
    results.append(figure);
    let url = file.url;
    const type = file.content_type || "";
    try {
      const reply = await fetch(file.url, { headers: authHeaders() });
      if (!reply.ok) throw await failure(reply);
      const blob = await reply.blob();
      url = URL.createObjectURL(blob);
      if (type.startsWith("image/")) {
        const img = make("img");
        img.alt = `${file.name}, result of job ${job.id.slice(0, 8)}`;
        img.src = url;
        figure.prepend(img);
      } else if (type.startsWith("audio/")) {
        const audio = make("audio");
        audio.controls = true;
        audio.src = url;
        audio.setAttribute("aria-label", file.name);
        figure.prepend(audio);
      } else if (type.startsWith("text/") && blob.size < 100000) {
        figure.prepend(make("pre", "text-result", await blob.text()));
      }
    } catch (err) {
      caption.append(make("span", "error", `${file.name}: ${err.message} `));
    }
    const link = make("a", "download", `download ${file.name}`);
    link.href = url;
    link.download = file.name.split("/").pop();
    caption.append(link);
  }
  if (!(job.files || []).length) results.append(make("p", "hint", "no files"));
}

async function restoreJobs() {
  for (const id of remembered()) {
    try {
      addJob(await api("GET", `/v1/jobs/${id}`));
    } catch (err) {
      if (/no such job/.test(err.message)) forget(id);
      else showError(`job ${id.slice(0, 8)}: ${err.message}`);
    }
  }
}

// -- start ---------------------------------------------------------------------------------

function tokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  $("token").value = token;
  url.searchParams.delete("token"); // keep it out of the history and of anything copied from the bar
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

async function start() {
  tokenFromUrl();
  $("modality").addEventListener("change", modalityChanged);
  $("task").addEventListener("change", taskChanged);
  $("request-form").addEventListener("submit", submit);
  $("token").addEventListener("change", async () => {
    showError("");
    if (!modalities.length && (await loadModalities())) restoreJobs();
  });
  if (await loadModalities()) await restoreJobs();
  document.body.dataset.ready = "true";
}

start();
