// polydiff's web page: the form is built from GET /v1/modalities (each task's needs and the
// JSON schema of its options), jobs are submitted to POST /v1/jobs and followed by server-sent
// events (or by polling when a token is needed: EventSource cannot send headers).
"use strict";

const $ = (id) => document.getElementById(id);
const FINAL = ["done", "failed", "cancelled"];
let modalities = [];

function token() {
  return $("token").value.trim();
}

function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

async function api(method, path, body, isForm = false) {
  const init = { method, headers: headers(isForm || body === undefined ? {} : { "content-type": "application/json" }) };
  if (body !== undefined) init.body = isForm ? body : JSON.stringify(body);
  const reply = await fetch(path, init);
  const data = await reply.json().catch(() => ({ detail: `${reply.status} ${reply.statusText}` }));
  if (!reply.ok) throw new Error(data.detail || `${reply.status}`);
  return data;
}

function showError(message) {
  $("error").textContent = message || "";
}

// -- the form ------------------------------------------------------------------------------

async function loadModalities() {
  try {
    modalities = (await api("GET", "/v1/modalities")).modalities;
  } catch (err) {
    showError(`could not list the modalities: ${err.message}`);
    return;
  }
  const select = $("modality");
  select.replaceChildren(...modalities.map((m) => new Option(m.name, m.name)));
  const preferred = modalities.find((m) => m.name === "image") || modalities[0];
  if (preferred) select.value = preferred.name;
  fillTasks();
}

function currentModality() {
  return modalities.find((m) => m.name === $("modality").value);
}

function currentTask() {
  const m = currentModality();
  return m && m.tasks.find((t) => t.name === $("task").value);
}

function fillTasks() {
  const m = currentModality();
  if (!m) return;
  $("task").replaceChildren(...m.tasks.map((t) => new Option(t.name, t.name)));
  fillTask();
}

function fieldType(schema) {
  if (schema.enum) return "enum";
  if (schema.type) return schema.type;
  const types = (schema.anyOf || []).map((s) => s.type).filter((t) => t && t !== "null");
  return types[0] || "string";
}

function fillTask() {
  const task = currentTask();
  if (!task) return;
  $("task-description").textContent = task.description;
  const inputs = $("inputs");
  inputs.replaceChildren(Object.assign(document.createElement("legend"), { textContent: "inputs" }));
  for (const need of task.needs) {
    const label = document.createElement("label");
    label.append(`${need} (file)`);
    const input = Object.assign(document.createElement("input"), { type: "file", id: `input-${need}`, name: need, required: true });
    label.append(input);
    inputs.append(label);
  }
  inputs.hidden = task.needs.length === 0;
  const options = $("options");
  options.replaceChildren(Object.assign(document.createElement("legend"), { textContent: "options of this task" }));
  const properties = (task.options_schema && task.options_schema.properties) || {};
  for (const [name, schema] of Object.entries(properties)) {
    options.append(optionInput(name, schema));
  }
  options.hidden = Object.keys(properties).length === 0;
}

function optionInput(name, schema) {
  const label = document.createElement("label");
  label.title = schema.description || "";
  label.append(name);
  const kind = fieldType(schema);
  let input;
  if (kind === "enum") {
    input = document.createElement("select");
    input.append(...schema.enum.map((v) => new Option(String(v), String(v))));
  } else if (kind === "boolean") {
    input = Object.assign(document.createElement("input"), { type: "checkbox", checked: Boolean(schema.default) });
  } else {
    input = document.createElement("input");
    input.type = kind === "number" || kind === "integer" ? "number" : "text";
    if (kind === "number") input.step = "any";
    for (const key of ["minimum", "maximum"]) if (schema[key] !== undefined) input[key.slice(0, 3)] = schema[key];
  }
  if (schema.default !== undefined && schema.default !== null && kind !== "boolean") input.value = String(schema.default);
  if (schema.default === null || schema.default === undefined) input.placeholder = schema.default === null ? "automatic" : "";
  input.id = `option-${name}`;
  input.dataset.option = name;
  input.dataset.kind = kind;
  label.append(input);
  if (schema.description) label.append(Object.assign(document.createElement("span"), { className: "hint", textContent: schema.description }));
  return label;
}

function readRequest() {
  const request = { modality: $("modality").value, task: $("task").value, options: {} };
  const prompt = $("prompt").value.trim();
  if (prompt) request.prompt = prompt;
  for (const [id, kind] of [["n", "integer"], ["seed", "integer"], ["steps", "integer"], ["guidance", "number"], ["sampler", "string"]]) {
    const raw = $(id).value.trim();
    if (raw !== "") request[id] = kind === "string" ? raw : Number(raw);
  }
  for (const input of $("options").querySelectorAll("[data-option]")) {
    const { option, kind } = input.dataset;
    if (kind === "boolean") request.options[option] = input.checked;
    else if (input.value.trim() === "") continue;
    else if (kind === "number" || kind === "integer") request.options[option] = Number(input.value);
    else request.options[option] = input.value;
  }
  return request;
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const request = readRequest();
  const files = [...$("inputs").querySelectorAll("input[type=file]")].filter((f) => f.files.length);
  try {
    let job;
    if (files.length) {
      const form = new FormData();
      form.append("request", JSON.stringify(request));
      for (const f of files) form.append(f.name, f.files[0]);
      job = await api("POST", "/v1/jobs", form, true);
    } else {
      job = await api("POST", "/v1/jobs", request);
    }
    follow(addCard(job.id, request), job.id);
  } catch (err) {
    showError(err.message);
  }
}

// -- jobs ----------------------------------------------------------------------------------

function addCard(id, request) {
  const card = document.createElement("li");
  card.className = "job";
  card.dataset.jobId = id;
  card.innerHTML = `<div class="head"><span class="status" role="status">queued</span>
    <progress max="1" value="0" aria-label="progress"></progress>
    <button type="button" class="cancel">cancel</button></div>
    <div class="what"></div><p class="error"></p><div class="files"></div>`;
  card.querySelector(".what").textContent = `${request.modality} / ${request.task}: ${request.prompt || "(no prompt)"}`;
  card.querySelector(".cancel").addEventListener("click", async () => {
    try {
      render(card, await api("DELETE", `/v1/jobs/${id}`).then(() => api("GET", `/v1/jobs/${id}`)));
    } catch (err) {
      card.querySelector(".error").textContent = err.message;
    }
  });
  $("jobs").prepend(card);
  return card;
}

function render(card, job) {
  const status = card.querySelector(".status");
  status.textContent = job.status === "queued" && job.position !== null ? `queued (position ${job.position})` : job.status;
  card.dataset.status = job.status;
  const bar = card.querySelector("progress");
  bar.max = job.progress.steps || 1;
  bar.value = job.status === "done" ? bar.max : job.progress.step;
  card.querySelector(".cancel").hidden = FINAL.includes(job.status);
  card.querySelector(".error").textContent = job.error || "";
  if (job.status === "done" && !card.querySelector(".files").childElementCount) showFiles(card, job);
}

function showFiles(card, job) {
  const box = card.querySelector(".files");
  for (const file of job.files) {
    const figure = document.createElement("figure");
    const type = file.content_type || "";
    if (type.startsWith("image/")) {
      figure.append(Object.assign(document.createElement("img"), { src: file.url, alt: file.name }));
    } else if (type.startsWith("audio/")) {
      figure.append(Object.assign(document.createElement("audio"), { src: file.url, controls: true }));
    }
    const link = Object.assign(document.createElement("a"), { href: file.url, textContent: file.name, download: file.name });
    figure.append(Object.assign(document.createElement("figcaption"), {}));
    figure.lastChild.append(link);
    box.append(figure);
  }
}

function follow(card, id) {
  if (!token() && window.EventSource) {
    const events = new EventSource(`/v1/jobs/${id}/events`);
    events.onmessage = (message) => {
      const job = JSON.parse(message.data);
      render(card, job);
      if (FINAL.includes(job.status)) events.close();
    };
    events.onerror = () => {
      events.close();
      poll(card, id);
    };
    return;
  }
  poll(card, id);
}

async function poll(card, id) {
  try {
    const job = await api("GET", `/v1/jobs/${id}`);
    render(card, job);
    if (FINAL.includes(job.status)) return;
  } catch (err) {
    card.querySelector(".error").textContent = err.message;
  }
  setTimeout(() => poll(card, id), 300);
}

// -- start ---------------------------------------------------------------------------------

window.addEventListener("DOMContentLoaded", () => {
  const given = new URLSearchParams(location.search).get("token");
  if (given) $("token").value = given;
  $("modality").addEventListener("change", fillTasks);
  $("task").addEventListener("change", fillTask);
  $("request").addEventListener("submit", submit);
  $("token").addEventListener("change", loadModalities);
  loadModalities();
});
