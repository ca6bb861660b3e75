// views.js — what the diagram colours (the node_view and edge_view settings): neurons by their
// activation a or weighted input z over the plane (the server's heatmaps), or by the error
// signal δ of each inspected sample (one band per sample) or ∂C/∂b of the batch; edges by
// the weight w, the gradient ∂C/∂w or the update Δw the next step subtracts. δ and the
// gradients use a diverging scale centred on 0 (orange below, blue above) that reaches full
// colour at the largest |value| in the diagram; the legend says that range.

import { element } from "./controls.js";
import { num } from "./format.js";

const NODE_LEGEND = {
  a: "neurons: activation a over the plane",
  z: "neurons: weighted input z over the plane",
  delta: "neurons: error signal δ, one band per sample",
  db: "neurons: ∂C/∂b of the batch",
};
const EDGE_LEGEND = {
  w: "edges: weight w (wider: larger |w|)",
  dw: "edges: gradient ∂C/∂w",
  update: "edges: Δw, what the next step subtracts",
};

function largest(rows) {
  let top = 0;
  for (const row of rows) {
    for (const v of Array.isArray(row) ? row : [row]) {
      if (v !== null && Math.abs(v) > top) top = Math.abs(v);
    }
  }
  return top;
}

/** ∂C/∂b_k of a layer of the backprop view: b's gradient, or the bias unit's weight's. */
export function biasGradient(layer, k) {
  if (layer.db) return layer.db[k];
  if (layer.has_unit) return layer.dW[k][layer.dW[k].length - 1];
  return null;
}

export class DiagramView {
  constructor(legend) {
    this.legend = legend;
    this.bp = null;
    this.nodeView = "a";
    this.edgeView = "w";
    this.nodeScale = 1;
    this.edgeScale = 1;
    this.shown = "";  // what the legend says, as JSON: redrawn only when that changes
  }

  /** The view settings and the backprop numbers of a frame; redraws the legend. */
  update(frame) {
    this.nodeView = frame.config.node_view;
    this.edgeView = frame.config.edge_view;
    this.bp = frame.backprop || null;
    const layers = this.bp ? this.bp.layers : [];
    if (this.nodeView === "delta") this.nodeScale = largest(layers.flatMap((p) => p.delta));
    if (this.nodeView === "db") {
      this.nodeScale = largest(layers.flatMap((p) => p.delta[0].map((_, k) => biasGradient(p, k))));
    }
    if (this.edgeView === "dw") this.edgeScale = largest(layers.flatMap((p) => p.dW));
    if (this.edgeView === "update") this.edgeScale = largest(layers.flatMap((p) => p.dW_update));
    this.drawLegend();
  }

  /** The heatmap that colours neuron k of layer index i, or null for a flat colour. */
  nodeMap(frame, i, k) {
    if (this.nodeView === "z") return frame.heat[`z/${i}/${k}`] || frame.heat[`a/${i}/${k}`];
    if (this.nodeView === "a" || !this.bp) return frame.heat[`a/${i}/${k}`];
    return null;
  }

  /** Flat colours of neuron k of layer index i, each in [−1, 1] (one per sample for δ). */
  nodeValues(i, k) {
    const layer = this.bp.layers[i];
    const scale = this.nodeScale || 1;
    if (this.nodeView === "delta") return layer.delta.map((row) => row[k] / scale);
    const g = biasGradient(layer, k);
    return g === null ? [] : [g / scale];
  }

  /** The number edge k ← j of layer index i is drawn by, in [−1, 1] for the gradients. */
  edgeValue(frame, i, k, j) {
    if (this.edgeView === "w" || !this.bp) return frame.params[i].W[k][j];
    const layer = this.bp.layers[i];
    const value = this.edgeView === "dw" ? layer.dW[k][j] : layer.dW_update[k][j];
    return value / (this.edgeScale || 1);
  }

  /** The hover card's line for the view's value of a neuron. */
  nodeText(i, k) {
    if (!this.bp || this.nodeView === "a" || this.nodeView === "z") return "";
    const layer = this.bp.layers[i];
    if (this.nodeView === "delta") return `δ per sample: ${layer.delta.map((row) => num(row[k])).join(", ")}`;
    const g = biasGradient(layer, k);
    return g === null ? "no bias (none)" : `∂C/∂b = ${num(g)}${layer.bias === "frozen" ? " (frozen: not applied)" : ""}`;
  }

  /** The hover card's line for the view's value of an edge. */
  edgeText(i, k, j) {
    if (!this.bp || this.edgeView === "w") return "";
    const layer = this.bp.layers[i];
    return `∂C/∂w = ${num(layer.dW[k][j])}, Δw = ${num(layer.dW_update[k][j])}`;
  }

  drawLegend() {
    const bp = this.bp && [this.bp.source, this.bp.rows[0], this.bp.m];
    const key = JSON.stringify([this.nodeView, this.edgeView, this.nodeScale, this.edgeScale, bp]);
    if (key === this.shown) return;
    this.shown = key;
    const parts = [];
    const scale = (label, top) => {
      const item = element("span", { class: "view-scale" });
      item.append(element("span", {}, `${label} ${num(-top)}`), element("span", { class: "scale" }),
        element("span", {}, num(top)));
      return item;
    };
    parts.push(element("span", {}, NODE_LEGEND[this.nodeView]));
    if (this.bp && (this.nodeView === "delta" || this.nodeView === "db")) {
      parts.push(scale(this.nodeView === "delta" ? "δ" : "∂C/∂b", this.nodeScale));
    }
    parts.push(element("span", {}, EDGE_LEGEND[this.edgeView]));
    if (this.bp && this.edgeView !== "w") {
      parts.push(scale(this.edgeView === "dw" ? "∂C/∂w" : "Δw", this.edgeScale));
    }
    if (this.bp && (this.nodeView === "delta" || this.nodeView === "db" || this.edgeView !== "w")) {
      const what = this.bp.source === "sample" ? `sample ${this.bp.rows[0]}` : `the next mini-batch (${this.bp.m} samples)`;
      parts.push(element("span", { class: "hint" }, `of ${what}; white is 0`));
    }
    this.legend.replaceChildren(...parts);
    this.legend.dataset.nodeScale = String(this.nodeScale);
    this.legend.dataset.edgeScale = String(this.edgeScale);
  }
}
