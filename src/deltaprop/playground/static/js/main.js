// main.js — wires the page together: builds the controls from the settings table, sends
// changes to the API, and draws each frame the server sends (newest state only).

import { get, openFrames, post, upload } from "./api.js";
import { drawLosses } from "./chart.js";
import { Comparison } from "./compare.js";
import { buildControls, element, setAttribute, setText } from "./controls.js";
import { axes, nearest, PointsView, thumbnails } from "./data.js";
import { css, paintOutput, pointColor } from "./heatmap.js";
import { NetworkView } from "./network.js";
import { Settings } from "./state.js";
import { Stepper } from "./stepper.js";
import { Tour } from "./tour.js";
import { DiagramView } from "./views.js";

const $ = (id) => document.getElementById(id);
const byTest = (id) => document.querySelector(`[data-testid="${id}"]`);

// Read by the tests and benchmarks/bench_playground.py: frames drawn, frames per second and
// the state version of the last frame drawn.
const stats = { frames: 0, fps: 0, version: -1, windowStart: performance.now(), windowFrames: 0 };
window.deltaprop = { stats };

const PLACEMENT = {
  "top-controls": ["problem", "lr", "optimizer", "momentum", "activation", "bias", "l1",
    "weight_decay", "reduction"],
  "data-controls": ["dataset", "n_classes", "n_samples", "noise", "test_size", "batch_size",
    "data_seed"],
  "network-controls": ["hidden", "output", "loss", "init", "bias_init", "dtype", "seed",
    "decay_bias"],
  "output-controls": ["discretize", "show_test"],
  "view-controls": ["node_view", "edge_view"],
  "stepper-controls": ["inspect", "sample", "focus", "stage", "bias_rule"],
};

let settings;
let setControls;
let network;
let points;
let markDataset;
let view;
let stepper;
let comparison;
let tour;
let latest = null;  // the newest state: a frame, or an API answer
let shownConfig = "";  // the configuration the controls and the URL show (and the focus), as JSON
let data = null;  // GET /api/data for latest.data_version
let editing = false;

function show(message) {
  const box = byTest("message");
  box.textContent = message || "";
  box.hidden = !message;
}

/**
 * Runs an API call; its state is adopted, its error shown (the server keeps running). An
 * answer older than the state already drawn (a frame can overtake it) is not adopted: the
 * newest state wins, its message included.
 */
async function act(call) {
  shownConfig = "";  // whatever the answer, the controls show the server's settings again
  try {
    const state = await call;
    if (latest && state.version < latest.version) return state;
    show(state.message);
    adopt(state);
    tour.update(state);
    return state;
  } catch (error) {
    show(error.message);
    return null;
  }
}

const configure = (changes) => act(post("/api/config", changes));
const control = (action) => act(post("/api/control", { action }));

async function loadData(version) {
  const fresh = await get("/api/data");
  if (fresh.data_version !== version) return;
  data = fresh;
  points.draw(data, latest.config.show_test);
  axes($("axes"), data.domain);
  const select = $("add-label");
  const k = data.classes ? data.classes.length : 0;
  $("add-label-wrap").hidden = k <= 2;
  select.replaceChildren(...(data.classes || []).map((name, c) => element("option", { value: String(c) }, name)));
  if (k > 2) select.value = "1";
  legend();
}

function legend() {
  const box = $("legend");
  if (!data || data.task === "regression") {
    box.replaceChildren(element("span", {}, "−1 "), element("span", { class: "scale" }), element("span", {}, " +1"));
    return;
  }
  const k = data.classes.length;
  box.replaceChildren(...data.classes.map((name, c) => {
    const item = element("span");
    const chip = element("span", { class: "chip" });
    chip.style.background = css(pointColor("classification", c, k));
    item.append(chip, name);
    return item;
  }));
}

/**
 * Counters, controls, URL and data of a state (from a frame or an API answer). The page is
 * written only where it changes: a frame while playing changes the counters, not the settings.
 */
function adopt(state) {
  const previous = latest;
  latest = state;
  setText(byTest("step-count"), String(state.step));
  setText(byTest("epoch-count"), String(state.epoch));
  const play = byTest("play-pause");
  setAttribute(play, "aria-label", state.playing ? "Pause" : "Play");
  if (play.classList.contains("playing") !== state.playing) play.classList.toggle("playing", state.playing);
  // a box being typed in is not overwritten (controls.js): when the focus moves, set again
  const focused = document.activeElement ? document.activeElement.dataset.testid : "";
  const config = JSON.stringify([state.config, focused]);
  if (config !== shownConfig) {
    shownConfig = config;
    showConfig(state.config);
  }
  if (!data || state.data_version !== data.data_version) loadData(state.data_version);
  else if (previous && previous.config.show_test !== state.config.show_test) points.draw(data, state.config.show_test);
  comparison.update(state, data);
}

/** The controls, the data-set thumbnails, the layer count and the URL of a configuration. */
function showConfig(config) {
  setControls(config);
  markDataset(config.dataset);
  // classes apply to the sets that have a choice of them
  byTest("set-n_classes").closest("label").hidden = !["blobs", "spirals"].includes(config.dataset);
  $("layer-count").textContent = `${config.hidden.length} hidden layer${config.hidden.length === 1 ? "" : "s"}`;
  const hash = settings.toHash(config);
  if (location.hash.replace(/^#/, "") !== hash) {
    history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
  }
}

function onFrame(frame) {
  if (frame.message !== (latest && latest.message)) show(frame.message);
  adopt(frame);
  view.update(frame);
  network.update(frame);
  stepper.update(frame);
  tour.update(frame);  // after the panels it may point into are drawn
  points.mark(frame.backprop ? frame.backprop.points : []);
  paintOutput($("heatmap"), frame, frame.config.discretize);
  drawLosses($("chart"), frame.history);
  const fmt = (v) => (v === null || v === undefined ? "—" : v.toFixed(3));
  setText(byTest("loss-train"), fmt(frame.loss.train));
  setText(byTest("loss-test"), fmt(frame.loss.test));
  const accuracy = frame.accuracy || {};
  setText($("accuracy-train"), accuracy.train === undefined ? "" : `(accuracy ${accuracy.train.toFixed(3)})`);
  setText($("accuracy-test"), accuracy.test === undefined ? "" : `(accuracy ${accuracy.test.toFixed(3)})`);
  setText($("sps"), `${Math.round(frame.steps_per_second)} steps/s`);
  stats.frames += 1;
  stats.version = frame.version;
  stats.windowFrames += 1;
  const now = performance.now();
  if (now - stats.windowStart >= 1000) {
    stats.fps = (1000 * stats.windowFrames) / (now - stats.windowStart);
    stats.windowStart = now;
    stats.windowFrames = 0;
    setText($("fps"), `${stats.fps.toFixed(0)} frames/s`);
  }
}

// ------------------------------------------------------------------ hover card and edits
function hover(text, event) {
  if (editing) return;
  const card = $("card");
  card.textContent = text;
  card.style.left = `${event.clientX + 14}px`;
  card.style.top = `${event.clientY + 14}px`;
  card.hidden = false;
}

function unhover() {
  if (!editing) $("card").hidden = true;
}

function edit(layer, name, index, value, label) {
  const card = $("card");
  editing = true;
  const input = element("input", { type: "number", step: "any", "data-testid": "edit-value", value: String(value) });
  const apply = element("button", { type: "button", "data-testid": "edit-apply" }, "set");
  const cancel = element("button", { type: "button" }, "cancel");
  const close = () => { editing = false; card.hidden = true; };
  apply.addEventListener("click", async () => {
    close();
    await act(post("/api/param", { layer, name, index, value: Number(input.value) }));
  });
  cancel.addEventListener("click", close);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") apply.click();
    if (event.key === "Escape") close();
  });
  const row = element("div", { class: "row" });
  row.append(input, apply, cancel);
  card.replaceChildren(element("div", {}, `set ${label}`), row);
  card.hidden = false;
  input.focus();
}

// ------------------------------------------------------------------ start
function wire() {
  byTest("play-pause").addEventListener("click", () => control(latest && latest.playing ? "pause" : "play"));
  byTest("step").addEventListener("click", () => control("step"));
  byTest("reset").addEventListener("click", () => control("reset"));
  byTest("compare").addEventListener("click", () => configure({ compare: true }));
  byTest("tour").addEventListener("click", () => tour.go(1));
  byTest("regenerate").addEventListener("click", () => configure({ data_seed: latest.config.data_seed + 1 }));
  byTest("add-layer").addEventListener("click", () => configure({ hidden: [...latest.config.hidden, 2] }));
  byTest("remove-layer").addEventListener("click", () => configure({ hidden: latest.config.hidden.slice(0, -1) }));
  byTest("upload-csv").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) act(upload("/api/data/csv", file));
    event.target.value = "";
  });
  $("snippet-box").addEventListener("toggle", async () => {
    if ($("snippet-box").open) $("snippet").textContent = await get("/api/export/snippet.py");
  });
  window.addEventListener("hashchange", () => configure(settings.fromLink(location.hash)));
  window.addEventListener("resize", () => { if (data) points.draw(data, latest.config.show_test); });
}

function addPoint(x1, x2, shift) {
  if (latest.config.step_mode) {  // step mode: a click picks the training point to inspect
    const sample = nearest(data, x1, x2);
    if (sample !== null) configure({ inspect: "sample", sample });
    return;
  }
  let label;
  if (data.task === "regression") label = shift ? -1 : 1;
  else if (data.classes.length > 2) label = shift ? 0 : Number($("add-label").value);
  else label = shift ? 0 : 1;
  act(post("/api/data/points", { points: [[x1, x2, label]] }));
}

async function start() {
  settings = new Settings(await get("/api/settings"));
  const placement = [];
  for (const [container, names] of Object.entries(PLACEMENT)) {
    for (const name of names) placement.push([name, $(container)]);
  }
  setControls = buildControls(settings, placement, (name, value) => configure({ [name]: value }));
  view = new DiagramView($("view-legend"));
  network = new NetworkView($("network"), settings, {
    config: configure, edit, hover, unhover,
    select: (focus) => configure({ focus }),
    target: (focus) => stepper.target(focus),
  }, view);
  stepper = new Stepper({
    body: $("stepper-body"), toggle: byTest("step-mode"), next: byTest("next-stage"),
    stage: byTest("stage"), equation: byTest("equation"), breakdown: byTest("breakdown"),
    caption: $("breakdown-caption"), check: byTest("gradcheck"), checked: byTest("gradcheck-result"),
    inspected: $("inspected"),
  }, network, { configure, control });
  comparison = new Comparison({
    panel: $("compare-panel"), grid: $("compare-grid"), status: $("compare-status"),
    rerun: $("compare-rerun"), close: $("compare-close"),
  }, settings, { configure });
  tour = new Tour($("tour-box"), { configure });
  points = new PointsView($("points"), addPoint, $("marks"));
  markDataset = thumbnails($("thumbs"), await get("/api/datasets"), (name) => configure({ dataset: name }));
  wire();
  let state = null;
  if (location.hash.length > 1) state = await configure(settings.fromLink(location.hash));
  if (!state) adopt(await get("/api/state"));
  openFrames(onFrame, (open) => { $("connection").textContent = open ? "connected" : "reconnecting…"; });
}

start().catch((error) => show(`the page could not start: ${error.message}`));
