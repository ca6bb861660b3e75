// stepper.js — step mode: the step-mode and next-stage buttons, the current stage (its name
// and seed 000's equation numbers), the equation with its numbers for the hovered or
// selected neuron or edge, the per-sample breakdown, the gradient check, and the stage's
// neurons and edges lit on the diagram. The stages and every number come from the server.

import { get } from "./api.js";
import { drawBreakdown } from "./breakdown.js";
import { setAttribute, setText } from "./controls.js";
import { equation } from "./equations.js";
import { focusLabel, num, sym, weight } from "./format.js";

/** The layers whose neurons and incoming edges a stage computes. */
function lit(stage, L) {
  const l = stage.layer;
  const all = [...Array(L).keys()].map((i) => i + 1);
  switch (stage.kind) {
    case "forward": return { nodes: [l - 1, l], edges: [l] };
    case "output": return { nodes: [l], edges: [] };
    case "gradients": return { nodes: [l - 1, l], edges: [l] };
    case "backward": return { nodes: [l, l + 1], edges: [l + 1] };
    default: return { nodes: all, edges: all };
  }
}

/** Does a stage compute something of `focus`? (Otherwise the stage's first neuron is shown.) */
function computes(stage, focus) {
  return Boolean(focus) && (stage.layer === null || focus[0] === stage.layer);
}

export class Stepper {
  /**
   * ui: {body, toggle, next, stage, equation, breakdown, caption, check, checked, inspected};
   * actions: configure(changes), control(action), show(message).
   */
  constructor(ui, network, actions) {
    this.ui = ui;
    this.network = network;
    this.actions = actions;
    this.frame = null;
    this.hovered = null;
    this.x = 0;  // the inspected row whose per-sample equation is shown
    this.rowsKey = "";
    this.drawn = "";  // the breakdown drawn, as JSON: the table is rebuilt only when it changes
    ui.toggle.addEventListener("click", () => actions.configure({ step_mode: !this.on() }));
    ui.next.addEventListener("click", () => actions.control("next-stage"));
    ui.check.addEventListener("click", () => this.check());
  }

  on() {
    return Boolean(this.frame && this.frame.config.step_mode);
  }

  /** The neuron or edge under the pointer (null when it leaves). */
  target(focus) {
    this.hovered = focus;
    if (this.on()) this.render();
  }

  update(frame) {
    this.frame = frame;
    this.render();
  }

  render() {
    const { ui, frame } = this;
    const on = this.on();
    setAttribute(ui.toggle, "aria-pressed", String(on));
    setText(ui.toggle, on ? "leave step mode" : "step through backprop");
    if (ui.body.hidden === on) ui.body.hidden = !on;
    const bp = frame.backprop;
    if (!on || !bp) {
      this.network.highlight(null, null);
      return;
    }
    const key = JSON.stringify([bp.rows, bp.step]);
    if (key !== this.rowsKey) {
      this.rowsKey = key;
      this.x = 0;
      ui.checked.textContent = "";
    }
    this.x = Math.min(this.x, bp.rows.length - 1);
    const stages = bp.stages;
    const stage = stages[frame.config.stage] || stages[0];
    setText(ui.stage, `stage ${stage.index + 1} of ${stages.length}: ${stage.equations.join(" ")} ${stage.name}`);
    if (ui.stage.dataset.kind !== stage.kind) ui.stage.dataset.kind = stage.kind;
    const focus = frame.config.focus.length ? frame.config.focus : null;
    const target = computes(stage, this.hovered) ? this.hovered : focus;
    setText(ui.equation, equation(bp, stage, target, this.x));
    const unitColumn = focus ? this.unitColumn(bp, focus[0]) : 0;
    const what = bp.source === "sample" ? `training sample ${bp.rows[0]}` : `the next mini-batch: ${bp.m} samples`;
    setText(ui.inspected, `inspecting ${what} · loss C = ${num(bp.loss)} (${bp.reduction}) · selected: ${focusLabel(focus, unitColumn)}`);
    const drawn = JSON.stringify([bp.breakdown, this.x]);
    if (drawn !== this.drawn) {
      this.drawn = drawn;
      drawBreakdown(ui.breakdown, ui.caption, bp.breakdown, this.x, (x) => {
        this.x = x;
        this.render();
      });
    }
    this.network.highlight(lit(stage, bp.layers.length), focus);
  }

  /** j of layer l's bias unit (its last input), or 0 if it has none. */
  unitColumn(bp, l) {
    const layer = bp.layers[l - 1];
    return layer && layer.has_unit ? layer.W[0].length : 0;
  }

  /** The library's gradient check of the selected parameter on the inspected rows. */
  async check() {
    const config = this.frame.config;
    const rows = config.inspect === "sample" ? `sample=${config.sample}` : "batch=current";
    this.ui.checked.textContent = "checking…";
    try {
      const c = await get(`/api/gradcheck?${rows}&focus=${config.focus.join(",")}`);
      const verdict = c.passed ? "✓ agrees" : "✗ DISAGREES";
      const [l, k, j] = c.focus;
      const name = c.name === "b" ? sym("b", l, k) : weight(l, k, j ?? c.index[1] + 1, c.name === "W" && c.bias);
      const wrong = c.bias && c.bias_rule === "layer-sum";
      this.ui.checked.textContent = `∂C/∂${name} by ${wrong ? "the WRONG layer-sum rule" : "backprop"} ${num(c.analytic)} · by central differences ${num(c.numerical)} · difference ${c.abs_error.toPrecision(2)}, relative to the largest gradient ${c.rel_error.toPrecision(2)} (tolerance ${c.tol.toExponential(0)}) ${verdict}`;
      this.ui.checked.dataset.passed = String(c.passed);
    } catch (error) {
      this.ui.checked.textContent = error.message;
      this.ui.checked.dataset.passed = "";
    }
  }
}
