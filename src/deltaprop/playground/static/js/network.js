// network.js — the network as a diagram: input features, neurons drawn as small heatmaps of
// their activation over the plane (or flat colours: views.js decides), bias units as
// constant-1 nodes, frozen biases drawn locked, edges coloured and sized by their weight (or
// gradient). Layer l (the seeds' numbering, 1 … L) is params[l − 1] in the API. In step mode
// a click selects a neuron or edge (its equation is shown), and a stage lights up the
// neurons and edges it computes.

import { element, makeControl } from "./controls.js";
import { script } from "./format.js";
import { css, diverging, putNeuron, putBands } from "./heatmap.js";

// A node is as many pixels wide as its heatmap has points (frames.py's COARSE), so every
// heatmap is put on one canvas under the nodes, a pixel per point: one canvas to redraw
// per frame instead of one per node (a third of the page's drawing time, in Chromium
// without a GPU).
const NODE = 32;
const GAP = 10;
const TOP = 96;  // room for each column's controls
const SIDE = 56;  // room for the feature labels
const SVG = "http://www.w3.org/2000/svg";
const LOCK = "M2.5 5.5 V4 a2.5 2.5 0 0 1 5 0 V5.5 M1.5 5.5 h7 v5 h-7 Z";

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

/** A padlock on a frozen bias: its gradient is computed, never applied. */
function lock(l) {
  const icon = svg("svg", { class: "lock", viewBox: "0 0 10 11", width: "10", height: "11",
    "data-testid": "frozen-lock", "aria-label": `bias of layer ${l} frozen` });
  icon.append(svg("path", { d: LOCK }));
  return icon;
}

const fixed = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(4));

export class NetworkView {
  /**
   * actions: config(changes), edit(layer, name, index, value, label), hover(text, event),
   * unhover(), select(focus), target(focus or null: the neuron or edge under the pointer).
   * view: a views.js DiagramView (what neurons and edges are coloured by).
   */
  constructor(container, settings, actions, view) {
    this.container = container;
    this.settings = settings;
    this.actions = actions;
    this.view = view;
    this.key = "";
    // The container's width, kept by an observer: reading it on every frame, after the
    // frame's text was written, made the browser lay the page out an extra time per frame.
    this.width = container.clientWidth;
    new ResizeObserver(() => {
      const width = container.clientWidth;
      if (width === this.width) return;
      this.width = width;
      if (this.frame) this.update(this.frame);  // laid out anew for the new width
    }).observe(container);
  }

  /** Which map colours neuron k of layer index i; null: flat colours (view.nodeValues). */
  nodeMap(frame, i, k) {
    return this.view.nodeMap(frame, i, k);
  }

  /** The number an edge is drawn by: W[k][j] of layer index i, or the view's gradient. */
  edgeValue(frame, i, k, j) {
    return this.view.edgeValue(frame, i, k, j);
  }

  update(frame) {
    const key = JSON.stringify([frame.config.features, frame.sizes,
      frame.params.map((p) => [p.bias, p.activation]), this.width]);
    if (key !== this.key) this.build(frame);
    this.key = key;
    this.paint(frame);
  }

  // ---------------------------------------------------------------- layout
  build(frame) {
    const all = Object.keys(this.settings.features);
    const active = frame.config.features;
    const sizes = frame.sizes;
    const L = sizes.length - 1;
    const columns = L + 1;
    const width = Math.max(this.width, 360);
    const x = (c) => SIDE + (c * (width - SIDE - NODE - 8)) / Math.max(columns - 1, 1);
    const y = (row) => TOP + row * (NODE + GAP);
    const rows = [all.length, ...sizes.slice(1)];
    const units = frame.params.map((p) => p.bias === "unit");
    const tallest = Math.max(...rows.map((n, c) => n + (units[c] ? 1 : 0)));
    const stage = element("div", { class: "stage" });
    stage.style.height = `${y(tallest) + 8}px`;
    const edges = svg("svg", { class: "edges", width: String(width), height: stage.style.height });
    this.maps = element("canvas", { class: "maps", width: String(width),
      height: String(y(tallest) + 8) });
    this.context = this.maps.getContext("2d");
    stage.append(edges, this.maps);
    this.nodes = [];
    this.edges = [];
    this.features = [];
    // the input column: every feature, the active ones feeding layer 1
    const group = element("div", { "data-testid": "set-features", role: "group",
      "aria-label": "input features: click one to switch it on or off" });
    stage.append(group);
    all.forEach((name, row) => {
      const on = active.includes(name);
      const node = element("button", { class: `node feature${on ? " on" : ""}`, type: "button",
        "data-testid": "feature", "data-feature": name, "aria-pressed": String(on),
        "aria-label": `feature ${this.settings.features[name]} ${on ? "on" : "off"}` });
      node.style.left = `${x(0)}px`;
      node.style.top = `${y(row)}px`;
      const label = element("span", { class: "feature-label" }, this.settings.features[name]);
      node.append(label);
      node.addEventListener("click", () => {
        const next = on ? active.filter((f) => f !== name) : [...active, name];
        this.actions.config({ features: next });
      });
      group.append(node);
      this.features.push({ at: [x(0) + 1, y(row) + 1], j: active.indexOf(name) });
    });
    const position = (c, row) => [x(c) + NODE / 2, y(row) + NODE / 2];
    const source = (l, j) => (l === 1 ? position(0, all.indexOf(active[j])) : position(l - 1, j));
    for (let l = 1; l <= L; l += 1) {
      const n = sizes[l];
      const nIn = sizes[l - 1];
      const unitRow = rows[l - 1];
      if (units[l - 1]) {  // the bias unit feeding layer l: a constant-1 node
        const unit = element("div", { class: "node unit", "data-testid": "bias-unit",
          "data-layer": String(l), title: `bias unit of layer ${l}: activation 1` }, "1");
        unit.style.left = `${x(l - 1)}px`;
        unit.style.top = `${y(unitRow)}px`;
        stage.append(unit);
      }
      for (let k = 0; k < n; k += 1) {
        const [x2, y2] = position(l, k);
        const from = [...Array(nIn).keys()].map((j) => [j, source(l, j)]);
        if (units[l - 1]) from.push([nIn, position(l - 1, unitRow)]);
        for (const [j, [x1, y1]] of from) {
          const middle = (x1 + x2) / 2;
          const path = svg("path", { d: `M${x1 + NODE / 2},${y1} C${middle},${y1} ${middle},${y2} ${x2 - NODE / 2},${y2}`,
            "data-testid": "edge", "data-layer": String(l), "data-to": String(k + 1),
            "data-from": j === nIn ? "unit" : String(j + 1) });
          this.hoverable(path, (frame2) => this.edgeText(frame2, l, k, j, j === nIn),
            () => this.editEdge(l, k, j, j === nIn), [l, k + 1, j + 1]);
          edges.append(path);
          this.edges.push({ path, i: l - 1, k, j });
        }
        const node = element("div", { class: "node neuron", "data-testid": "neuron",
          "data-layer": String(l), "data-index": String(k + 1), tabindex: "0",
          "aria-label": `neuron ${k + 1} of layer ${l}` });
        node.style.left = `${x(l)}px`;
        node.style.top = `${y(k)}px`;
        const mode = frame.params[l - 1].bias;
        const bias = element("span", { class: `bias-mark ${mode}` });
        node.append(bias);
        if (mode === "frozen") node.append(lock(l));
        this.hoverable(node, (frame2) => this.neuronText(frame2, l, k), () => this.editBias(l, k),
          [l, k + 1]);
        stage.append(node);
        this.nodes.push({ node, at: [x(l) + 1, y(k) + 1], bias, i: l - 1, k });
      }
    }
    this.container.replaceChildren(this.columnControls(frame, x, L), stage);
  }

  columnControls(frame, x, L) {
    const bar = element("div", { class: "column-controls" });
    const hidden = frame.config.hidden;
    const rows = this.settings.byName;
    const head = element("div", { class: "column", style: `left:${x(0) - 20}px` });
    head.append(element("span", { class: "column-title" }, "features"));
    bar.append(head);
    for (let l = 1; l <= L; l += 1) {
      const left = Math.min(x(l) - 24, this.width - 84);
      const column = element("div", { class: "column", style: `left:${left}px` });
      const output = l === L;
      const title = output ? "output" : `layer ${l}`;
      column.append(element("span", { class: "column-title" }, title));
      if (!output) {
        const buttons = element("div", { class: "neuron-buttons" });
        for (const [symbol, change, testid] of [["+", 1, "add-neuron"], ["−", -1, "remove-neuron"]]) {
          const button = element("button", { type: "button", "data-testid": testid,
            "data-layer": String(l), "aria-label": `${change > 0 ? "add" : "remove"} a neuron in layer ${l}` }, symbol);
          button.addEventListener("click", () => {
            const next = [...hidden];
            next[l - 1] += change;
            if (next[l - 1] >= 1) this.actions.config({ hidden: next });
          });
          buttons.append(button);
        }
        column.append(buttons);
        column.append(this.layerControl(rows.activation, frame, l, "σ"));
      } else {
        column.append(element("span", { class: "output-sigma" }, `σ ${frame.config.output}`));
      }
      column.append(this.layerControl(rows.bias, frame, l, "b"));
      bar.append(column);
    }
    return bar;
  }

  /** Layer l's entry of a per-layer setting (activation, bias): "set-<name>-<l>". */
  layerControl(row, frame, l, label) {
    const control = makeControl(row, (name, value) => {
      const list = [...frame.config[name]];
      list[l - 1] = value;
      this.actions.config({ [name]: list });
    }, { testid: `set-${row.name}-${l}`, label });
    control.set(frame.config[row.name][l - 1]);
    return control.node;
  }

  // ---------------------------------------------------------------- hover and edit
  /** Hover shows the card (and in step mode the equation); a click edits, or in step mode
   * selects `focus` ([l, k] or [l, k, j]). */
  hoverable(target, text, edit, focus) {
    target.addEventListener("mouseenter", (event) => {
      if (this.frame) this.actions.hover(text(this.frame), event);
      this.actions.target(focus);
    });
    target.addEventListener("mousemove", (event) => {
      if (this.frame) this.actions.hover(text(this.frame), event);
    });
    target.addEventListener("mouseleave", () => {
      this.actions.unhover();
      this.actions.target(null);
    });
    const act = () => {
      if (this.frame && this.frame.config.step_mode) this.actions.select(focus);
      else edit();
    };
    target.addEventListener("click", act);
    target.addEventListener("keydown", (event) => { if (event.key === "Enter") act(); });
  }

  edgeText(frame, l, k, j, unit) {
    const w = frame.params[l - 1].W[k][j];
    const from = unit ? "the bias unit (activation 1)"
      : l === 1 ? this.settings.features[frame.config.features[j]] : `neuron ${j + 1} of layer ${l - 1}`;
    const extra = this.view.edgeText(l - 1, k, j);
    const click = frame.config.step_mode ? "click to select" : "click to edit";
    return `weight w${script("sub", k + 1)}${(unit ? "ᵤ" : script("sub", j + 1))}${script("sup", l)} = ${fixed(w)}\nfrom ${from} into neuron ${k + 1} of layer ${l}${extra ? `\n${extra}` : ""}\n${click}`;
  }

  neuronText(frame, l, k) {
    const p = frame.params[l - 1];
    const map = this.nodeMap(frame, l - 1, k);
    const b = p.b ? `b = ${fixed(p.b[k])} (${p.bias})` : p.bias === "unit" ? `bias unit weight ${fixed(p.W[k][p.W[k].length - 1])}` : "no bias";
    const what = frame.config.node_view === "z" ? "z" : "a";
    const range = map ? `${what} over the plane: ${map.lo.toFixed(3)} … ${map.hi.toFixed(3)}` : this.view.nodeText(l - 1, k);
    const edit = frame.config.step_mode ? "\nclick to select" : p.b ? "\nclick to edit b" : "";
    return `neuron ${k + 1} of layer ${l}: σ = ${p.activation}\n${b}\n${range}${edit}`;
  }

  editEdge(l, k, j, unit) {
    const w = this.frame.params[l - 1].W[k][j];
    const label = unit ? `bias unit weight into neuron ${k + 1} of layer ${l}` : `w${script("sub", k + 1)}${script("sub", j + 1)}${script("sup", l)}`;
    this.actions.edit(l - 1, "W", [k, j], w, label);
  }

  editBias(l, k) {
    const p = this.frame.params[l - 1];
    if (p.b) this.actions.edit(l - 1, "b", [k], p.b[k], `b${script("sub", k + 1)}${script("sup", l)}`);
  }

  // ---------------------------------------------------------------- step mode
  /**
   * Light up what a stage computes: `lit` = {nodes: layers whose neurons, edges: layers
   * whose incoming edges} (null: nothing dimmed), and mark the selected `focus`.
   */
  highlight(lit, focus) {
    const key = JSON.stringify([lit, focus, this.key]);
    if (key === this.lit) return;
    this.lit = key;
    const [fl, fk, fj] = focus || [];
    for (const { node, i, k } of this.nodes) {
      node.classList.toggle("dim", Boolean(lit) && !lit.nodes.includes(i + 1));
      node.classList.toggle("selected", focus && focus.length === 2 && fl === i + 1 && fk === k + 1);
    }
    for (const { path, i, k, j } of this.edges) {
      path.classList.toggle("dim", Boolean(lit) && !lit.edges.includes(i + 1));
      path.classList.toggle("selected", focus && focus.length === 3 && fl === i + 1 && fk === k + 1 && fj === j + 1);
    }
  }

  // ---------------------------------------------------------------- painting
  paint(frame) {
    this.frame = frame;
    const context = this.context;
    for (const { at, j } of this.features) {
      const map = j >= 0 ? frame.heat[`feature/${j}`] : null;
      if (map) putNeuron(context, map, at[0], at[1]);
      else context.clearRect(at[0], at[1], NODE, NODE);
    }
    for (const entry of this.nodes) {
      const { at, bias, i, k } = entry;
      const map = this.nodeMap(frame, i, k);
      if (map) putNeuron(context, map, at[0], at[1]);
      else putBands(context, this.view.nodeValues(i, k), at[0], at[1], NODE);
      const b = frame.params[i].b;
      const colour = b ? css(diverging(b[k])) : "";
      if (colour !== entry.colour) {  // a style written, even unchanged, is restyled
        entry.colour = colour;
        bias.style.background = colour;
      }
    }
    for (const edge of this.edges) {
      // colour at 1/64 and width at 1/4 px: an edge whose look does not change is not touched
      const w = this.edgeValue(frame, edge.i, edge.k, edge.j);
      const look = `${Math.round(Math.max(-1, Math.min(1, w)) * 64)} ${Math.round(Math.min(8, 0.5 + 1.5 * Math.abs(w)) * 4)}`;
      if (look === edge.look) continue;
      edge.look = look;
      edge.path.setAttribute("stroke", css(diverging(w)));
      edge.path.setAttribute("stroke-width", String(Math.min(8, 0.5 + 1.5 * Math.abs(w))));
    }
  }
}
