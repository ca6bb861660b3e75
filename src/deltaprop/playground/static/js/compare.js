// compare.js — seed 003 side by side: POST /api/compare trains the playground's first
// weights with each bias mode (learned, unit, frozen, none, and seed 002's wrong rule) for
// the same steps on the same mini-batches; each is drawn as a small multiple — its output
// over the plane with the training points, its loss curves, its final figures.

import { post } from "./api.js";
import { drawLosses } from "./chart.js";
import { element } from "./controls.js";
import { drawPoints } from "./data.js";
import { paintOutput } from "./heatmap.js";

const NOTES = {
  learned: () => "every b learned, eq. (15)",
  unit: () => "a constant-1 node; its weights learned, eq. (11)",
  frozen: (r) => `every b frozen at ${r.bias_init}: never updated`,
  none: () => "no b at all: z = W a",
  "wrong rule": () => "learned with seed 002's WRONG rule (Σ of the layer's δs)",
};

/** A result's base64 maps as a frame's `heat` and `maps`, for paintOutput. */
function asFrame(maps) {
  const heat = {};
  for (const m of maps) {
    const text = atob(m.data);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
    heat[m.key] = { ...m, bytes };
  }
  return { heat, maps };
}

export class Comparison {
  /** ui: {panel, grid, status, rerun, close}; actions: configure(changes), show(message). */
  constructor(ui, settings, actions) {
    this.ui = ui;
    this.settings = settings;
    this.actions = actions;
    this.key = null;  // the settings and data the shown result was trained on
    this.running = false;
    ui.rerun.addEventListener("click", () => this.run());
    ui.close.addEventListener("click", () => actions.configure({ compare: false }));
  }

  /** The settings that change what training does (not the view), and the data's version. */
  keyOf(state) {
    const config = Object.fromEntries(this.settings.rows.filter((row) => row.group !== "view")
      .map((row) => [row.name, state.config[row.name]]));
    return JSON.stringify([config, state.data_version]);
  }

  update(state, data) {
    this.state = state;
    this.data = data;
    this.ui.panel.hidden = !state.config.compare;
    if (!state.config.compare) return;
    if (this.key === null && !this.running) this.run();
    else if (this.key !== this.keyOf(state) && !this.running) {
      this.ui.status.textContent = "The settings or the data changed since: run again to compare on them.";
    }
  }

  async run() {
    this.running = true;
    const key = this.keyOf(this.state);
    this.ui.status.textContent = "training the same first weights in each mode…";
    this.ui.panel.setAttribute("aria-busy", "true");
    try {
      const result = await post("/api/compare", {});
      this.key = key;
      this.draw(result);
      this.ui.status.textContent = `${result.steps} steps each, from the same first weights, on the same mini-batches${result.same_start ? "" : " (first weights differ!)"}.`;
    } catch (error) {
      this.ui.status.textContent = error.message;
    } finally {
      this.running = false;
      this.ui.panel.setAttribute("aria-busy", "false");
    }
  }

  draw(result) {
    this.ui.grid.replaceChildren();  // cards go in first: the charts read their size
    for (const r of result.modes) {
      const card = element("figure", { class: "mode", "data-testid": "compare-mode", "data-mode": r.mode });
      const plot = element("div", { class: "mini-plot" });
      const heat = element("canvas", { class: "mini-heat" });
      const dots = element("canvas", { class: "mini-points", width: "240", height: "240" });
      plot.append(heat, dots);
      const chart = element("canvas", { class: "mini-chart" });
      const figures = r.accuracy
        ? `test accuracy ${r.accuracy.test.toFixed(3)} · train ${r.accuracy.train.toFixed(3)}`
        : `test loss ${r.loss.test === null ? "—" : r.loss.test.toFixed(3)}`;
      card.append(element("figcaption", {}, r.mode), plot, chart,
        element("div", { class: "mode-result", "data-testid": "compare-result" }, figures),
        element("div", { class: "hint" }, r.message || NOTES[r.mode](result)));
      this.ui.grid.append(card);
      paintOutput(heat, asFrame(r.maps), false);
      if (this.data) {
        const k = this.data.classes ? this.data.classes.length : 0;
        drawPoints(dots, this.data.domain, this.data.train, this.data.task, k, "white", 4);
      }
      drawLosses(chart, r.curve);
    }
  }
}
