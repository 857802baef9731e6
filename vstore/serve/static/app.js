// The vstore page: plain JavaScript over the JSON API, no build step. The query lives in the URL
// (/?q=a+dog&k=20, /?like=42), so a search can be bookmarked, shared and reopened. Text from the database
// is only ever set with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const THUMB = 256;
let datasets = [];
let current = null; // {mode: "text" | "like" | "upload", q, like, file, offset, nextOffset, seen}

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body && body.message ? body.message : `HTTP ${response.status}`);
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function ms(value) {
  return value === undefined ? "?" : value < 10 ? value.toFixed(1) : Math.round(value).toString();
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// -- controls and the URL --------------------------------------------------------------------------

function controlParams() {
  const p = new URLSearchParams();
  p.set("target", $("target").value);
  p.set("k", $("k").value);
  if ($("dataset").value) p.set("dataset", $("dataset").value);
  if ($("split").value) p.set("split", $("split").value);
  if ($("exact").checked) p.set("exact", "true");
  return p;
}

const SEARCH_MODES = ["vector", "text", "hybrid"];

// The words/meaning choice applies to text queries only (an image or a stored image has no words).
function withSearchMode(p) {
  if ($("search-mode").value !== "vector") p.set("mode", $("search-mode").value);
  return p;
}

function pageUrl(query) {
  const p = new URLSearchParams();
  if (query.mode === "text") withSearchMode(p).set("q", query.q);
  if (query.mode === "like") p.set("like", query.like);
  for (const [key, value] of controlParams()) p.set(key, value);
  return "/?" + p.toString();
}

function selectValue(select, value) {
  if (value === null) return;
  if (![...select.options].some((o) => o.value === value)) {
    select.append(el("option", { value, text: value }));
  }
  select.value = value;
}

function fillSplits() {
  const chosen = $("dataset").value;
  const splits = new Set();
  for (const d of datasets) {
    if (!chosen || d.name === chosen) Object.keys(d.splits).forEach((s) => splits.add(s));
  }
  const keep = $("split").value;
  $("split").replaceChildren(el("option", { value: "", text: "all" }));
  for (const s of [...splits].sort()) $("split").append(el("option", { value: s, text: s }));
  $("split").value = splits.has(keep) ? keep : "";
}

function applyUrl() {
  const p = new URLSearchParams(location.search);
  selectValue($("target"), p.get("target") || "images");
  selectValue($("k"), p.get("k") || "20");
  selectValue($("dataset"), p.get("dataset") || "");
  fillSplits();
  selectValue($("split"), p.get("split") || "");
  $("exact").checked = p.get("exact") === "true";
  // an unknown mode falls back to the default instead of being added to the list
  $("search-mode").value = SEARCH_MODES.includes(p.get("mode")) ? p.get("mode") : "vector";
  $("q").value = p.get("q") || "";
  if (p.get("q")) run({ mode: "text", q: p.get("q") }, false);
  else if (p.get("like")) run({ mode: "like", like: p.get("like") }, false);
  else {
    current = null;
    $("results").replaceChildren();
    $("more").hidden = true;
    setStatus("");
  }
}

// -- searching -------------------------------------------------------------------------------------

async function run(query, push) {
  current = { ...query, offset: 0, nextOffset: null, seen: new Set() };
  if (push && query.mode !== "upload") history.pushState(null, "", pageUrl(query));
  $("results").replaceChildren();
  $("more").hidden = true;
  await fetchPage();
}

async function fetchPage() {
  const query = current;
  const p = controlParams();
  p.set("offset", query.offset);
  setStatus("Searching…");
  let body;
  try {
    if (query.mode === "text") {
      withSearchMode(p).set("q", query.q);
      body = await api("/api/search?" + p);
    } else if (query.mode === "like") {
      const route = $("target").value === "captions" ? "captions" : "similar";
      body = await api(`/api/images/${encodeURIComponent(query.like)}/${route}?` + p);
    } else {
      const form = new FormData();
      form.append("file", query.file);
      body = await api("/api/search/image?" + p, { method: "POST", body: form });
    }
  } catch (error) {
    if (query === current) setStatus(error.message, true);
    return;
  }
  if (query !== current) return; // a newer search started meanwhile
  render(body);
}

function describe(query) {
  if (query.mode === "text") return `for “${query.q}”`;
  if (query.mode === "like") return `like image ${query.like}`;
  return `like ${query.file.name}`;
}

function render(body) {
  const target = body.query.target;
  let container = $("results").firstElementChild;
  if (!container) {
    container = el("div", { class: target === "images" ? "grid" : "list" });
    $("results").append(container);
  }
  for (const hit of body.hits) {
    if (current.seen.has(hit.id)) continue; // an index may repeat a hit across pages
    current.seen.add(hit.id);
    container.append(hit.kind === "image" ? imageCard(hit, THUMB) : captionRow(hit));
  }
  current.offset = body.offset + body.query.k;
  current.nextOffset = body.next_offset;
  $("more").hidden = body.next_offset === null;
  const t = body.took_ms;
  const shown = current.seen.size;
  const noun = target === "images" ? (shown === 1 ? "image" : "images") : shown === 1 ? "caption" : "captions";
  setStatus(
    shown === 0
      ? `No ${target} ${describe(current)}. Check the dataset and split filters.`
      : `${shown} ${noun} ${describe(current)} · encode ${ms(t.encode)} ms · search ${ms(t.search)} ms · ` +
          `serialise ${ms(t.serialise)} ms · server total ${ms(t.total)} ms`,
  );
}

function imageCard(hit, size) {
  const card = el(
    "figure",
    { class: "card", tabindex: "0", "data-id": hit.image_id, title: `${hit.dataset}: ${hit.path}` },
    el(
      "div",
      { class: "thumb" },
      el("img", { src: `/images/${hit.image_id}?size=${size}`, alt: hit.path, loading: "lazy" }),
      el("span", { class: "score badge", title: scoreTitle(hit), text: scoreText(hit) }),
    ),
    el(
      "figcaption",
      {},
      el("span", { class: "path", text: hit.path.split("/").pop() }),
      el("span", { class: "dataset", text: hit.dataset }),
    ),
  );
  openOnClick(card, hit.image_id);
  return card;
}

function captionRow(hit) {
  const row = el(
    "div",
    { class: "row", tabindex: "0", "data-id": hit.image_id },
    el("img", { src: `/images/${hit.image_id}?size=128`, alt: "", loading: "lazy" }),
    el(
      "div",
      {},
      el("span", { class: "text", text: hit.caption }),
      el("span", { class: "path", text: `${hit.dataset}: ${hit.path}` }),
    ),
    el("span", { class: "score", title: scoreTitle(hit), text: scoreText(hit) }),
  );
  openOnClick(row, hit.image_id);
  return row;
}

// A hit found by words only has no similarity: show its text score instead.
function scoreText(hit) {
  if (hit.similarity !== null && hit.similarity !== undefined) return hit.similarity.toFixed(3);
  return hit.score !== null && hit.score !== undefined ? hit.score.toFixed(3) : "";
}

function scoreTitle(hit) {
  return hit.similarity !== null && hit.similarity !== undefined ? "cosine similarity" : "text match score";
}

function openOnClick(node, imageId) {
  node.addEventListener("click", () => openDetail(imageId));
  node.addEventListener("keydown", (event) => {
    // Enter and Space open the detail; preventDefault keeps the same key press from reaching the
    // dialog's close button, which gets the focus when the dialog opens.
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openDetail(imageId);
    }
  });
}

// -- one image: its captions, the nearest captions, similar images -------------------------------------

async function openDetail(imageId) {
  const dialog = $("detail");
  dialog.dataset.id = imageId;
  $("detail-img").src = `/images/${imageId}?size=512`;
  for (const id of ["detail-path", "detail-meta"]) $(id).textContent = "";
  for (const id of ["detail-captions", "detail-nearest", "detail-similar"]) $(id).replaceChildren();
  if (!dialog.open) dialog.showModal();
  const scope = new URLSearchParams();
  if ($("dataset").value) scope.set("dataset", $("dataset").value);
  try {
    const [record, nearest, similar] = await Promise.all([
      api(`/api/images/${imageId}`),
      api(`/api/images/${imageId}/captions?k=5&` + scope),
      api(`/api/images/${imageId}/similar?k=8&` + scope),
    ]);
    if (dialog.dataset.id !== String(imageId)) return;
    $("detail-path").textContent = record.path;
    const size = record.width ? ` · ${record.width}×${record.height}` : "";
    $("detail-meta").textContent = `${record.dataset}${record.split ? " · " + record.split : ""}${size} · id ${record.id}`;
    const own = record.captions.length ? record.captions : ["(no captions)"];
    $("detail-captions").replaceChildren(...own.map((text) => el("li", { text })));
    $("detail-nearest").replaceChildren(
      ...nearest.hits.map((hit) =>
        el("li", {}, el("span", { text: hit.caption }), el("span", { class: "score", text: hit.similarity.toFixed(3) })),
      ),
    );
    $("detail-similar").replaceChildren(...similar.hits.map((hit) => imageCard(hit, 128)));
  } catch (error) {
    $("detail-meta").textContent = error.message;
  }
}

// -- wiring ----------------------------------------------------------------------------------------

function useFile(file) {
  if (!file) return;
  $("drop-text").textContent = `Searching by ${file.name} (drop another image to change it)`;
  $("drop").classList.add("loaded");
  $("q").value = "";
  run({ mode: "upload", file }, false);
}

function wire() {
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("q").value.trim();
    if (q) run({ mode: "text", q }, true);
    else if (current && current.mode === "upload") run(current, false);
  });
  for (const id of ["target", "k", "dataset", "split", "exact", "search-mode"]) {
    $(id).addEventListener("change", () => {
      if (id === "dataset") fillSplits();
      if (current) run(current, current.mode !== "upload");
    });
  }
  $("more").addEventListener("click", () => {
    if (current && current.nextOffset !== null) fetchPage();
  });
  $("file").addEventListener("change", () => useFile($("file").files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    useFile(event.dataTransfer.files[0]);
  });
  $("detail-like").addEventListener("click", () => {
    const id = $("detail").dataset.id;
    $("detail").close();
    $("target").value = "images";
    $("q").value = "";
    run({ mode: "like", like: id }, true);
  });
  window.addEventListener("popstate", applyUrl);
}

async function start() {
  wire();
  try {
    const [health, list] = await Promise.all([api("/health"), api("/api/datasets")]);
    datasets = list.datasets;
    const images = health.counts.images_ok || 0;
    $("model").textContent =
      `${health.model} on ${health.device} · ${images.toLocaleString()} images · ` +
      `${(health.counts.captions || 0).toLocaleString()} captions`;
    if (health.random_weights) {
      $("banner").textContent =
        `This database holds embeddings from a model with random weights (${health.model}): ` +
        "the results are meaningless. Ingest with real weights to search for real.";
      $("banner").hidden = false;
    }
    for (const d of datasets) $("dataset").append(el("option", { value: d.name, text: d.name }));
  } catch (error) {
    setStatus(`The server is not answering: ${error.message}`, true);
  }
  document.body.dataset.ready = "true";
  if (current === null) applyUrl(); // unless a search was started while the page was loading
}

start();
