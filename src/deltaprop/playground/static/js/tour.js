// tour.js — the guided tour: a few steps of text, each pointing at a part of the page and
// setting up one of the seeds' questions (through the settings, so each step is a link:
// #tour=N). The `tour` setting is the step shown, 0 when closed.

import { element } from "./controls.js";

const L = (state) => state.sizes.length - 1;

export const STEPS = [
  { target: "play-pause", title: "A network, learning",
    text: "A network learning the circles data: the inputs x₁, x₂ on the left, two hidden layers, one output per class. Press play to train, or ⏭ for one mini-batch step. Every number on this page is computed by deltaprop's engine; the page only draws." },
  { target: "set-node_view", title: "What backprop computes",
    text: "Colour the neurons by their error signal δ = ∂C/∂z (eq. 6), one band per sample, and the edges by ∂C/∂w. Orange is negative, blue positive, white 0; the legend under the diagram gives the range.",
    setup: () => ({ node_view: "delta", edge_view: "dw" }) },
  { target: "step-mode", title: "Seed 000: one step, equation by equation",
    text: "Step mode goes through one backprop step in the seed's order: the forward pass (2) layer by layer, the output error (9), then from the last layer back the gradients (10), (14) and the error signal of the layer below (8), then the updates (11), (15). Click a data point to inspect that sample.",
    setup: () => ({ step_mode: true, stage: 0, inspect: "sample", sample: 0 }) },
  { target: "equation", title: "The equation, with its numbers",
    text: "Each stage shows its equation with the live numbers of the neuron or edge you hover or click — here the output error (9). Press next ▸ to go on; after the updates, next takes the step.",
    setup: (state) => ({ stage: L(state), focus: [L(state), 1] }) },
  { target: "breakdown", title: "Seed 002: the neuron's δ, or the sum of all δs?",
    text: "A bias's gradient (14) is its own neuron's δ; over a mini-batch it is summed (or averaged) over the samples — each sample's term is a row here — never over the layer's neurons. Set reduction to sum and change the batch size: the sum grows with the batch, the mean does not.",
    setup: (state) => ({ inspect: "batch", stage: L(state) + 1, focus: [L(state), 1] }) },
  { target: "set-bias_rule", title: "Seed 002's wrong rule",
    text: "Set the bias rule to layer-sum to train with the mistaken rule (every bias of a layer corrected by the sum of the layer's δs) and watch the update stage and the gradient check." },
  { target: "gradcheck", title: "Check a gradient",
    text: "Compares backprop's gradient of the selected weight or bias with central differences of the loss (deltaprop's gradcheck), with the error relative to the largest gradient.",
    setup: (state) => ({ focus: [L(state), 1] }) },
  { target: "set-bias-2", title: "Seed 001: the bias unit",
    text: "Set a layer's bias to unit: a constant-1 node appears, whose weights are the biases. Its gradient is δ · 1 = δ — the same numbers as learned. Frozen keeps b at bias init: its gradient is still shown, never applied (the padlock)." },
  { target: "compare", title: "Seed 003: are biases needed?",
    text: "Compare trains the same first weights with each bias mode side by side. On circles a network without biases (or with them frozen at 0) is an odd function of x and cannot beat chance; learned and unit learn it.",
    setup: () => ({ compare: true }) },
];

export class Tour {
  /** box: the tour's dialog; actions: configure(changes). */
  constructor(box, actions) {
    this.box = box;
    this.actions = actions;
    this.shown = -1;
    this.state = null;
  }

  /** Go to step n (1-based; 0 closes), applying its set-up. */
  go(n) {
    const step = STEPS[n - 1];
    const setup = step && step.setup ? step.setup(this.state) : {};
    this.actions.configure({ tour: n, ...setup });
  }

  update(state) {
    this.state = state;
    const n = state.config.tour;
    if (n === this.shown) return this.place();
    this.shown = n;
    document.querySelectorAll(".tour-target").forEach((node) => node.classList.remove("tour-target"));
    const step = STEPS[n - 1];
    this.box.hidden = !step;
    if (!step) return undefined;
    const back = element("button", { type: "button", "data-testid": "tour-back" }, "back");
    const next = element("button", { type: "button", "data-testid": "tour-next" }, n < STEPS.length ? "next" : "finish");
    const close = element("button", { type: "button", "data-testid": "tour-close", "aria-label": "close the tour" }, "×");
    back.disabled = n === 1;
    back.addEventListener("click", () => this.go(n - 1));
    next.addEventListener("click", () => this.go(n < STEPS.length ? n + 1 : 0));
    close.addEventListener("click", () => this.go(0));
    const row = element("div", { class: "row" });
    row.append(back, element("span", { class: "hint" }, `${n} of ${STEPS.length}`), next);
    this.box.replaceChildren(close, element("strong", {}, step.title), element("p", {}, step.text), row);
    this.scrolled = false;
    return this.place();
  }

  /** Put the box beside its target (which may have moved, or just appeared), and mark the
   * target; the first time it is seen in a step, bring it into view (not on every frame). */
  place() {
    const step = STEPS[this.shown - 1];
    if (!step) return;
    const target = document.querySelector(`[data-testid="${step.target}"]`);
    if (!target || !target.getClientRects().length) return;  // not drawn (yet)
    target.classList.add("tour-target");
    if (!this.scrolled) target.scrollIntoView({ block: "center" });
    this.scrolled = true;
    const box = target.getBoundingClientRect();
    const height = this.box.offsetHeight;
    const left = Math.max(8, Math.min(window.innerWidth - 340, box.left)) + window.scrollX;
    const fits = box.bottom + 10 + height < window.innerHeight;
    const top = fits ? box.bottom + 10 : Math.max(8, box.top - height - 10);
    this.box.style.left = `${left}px`;
    this.box.style.top = `${top + window.scrollY}px`;
  }
}
