// equations.js — seed 000's equations with the live numbers substituted, for one neuron or
// edge at one stage of step mode: text only, every number from the backprop view
// (GET /api/backprop, or a frame's `backprop`). Nothing is computed here: a sum the page
// shows was summed by the engine.

import { factor, num, sub, sup, sym, weight } from "./format.js";

const MAX_TERMS = 6;  // terms of a sum written out; the rest are "…"

function terms(list) {
  if (list.length <= MAX_TERMS) return list.join(" + ");
  return `${list.slice(0, MAX_TERMS - 1).join(" + ")} + … (${list.length} terms)`;
}

/** The neuron (and input) an equation is about: the target if the stage computes it. */
export function subject(stage, target, L) {
  const layer = stage.layer ?? (target ? target[0] : L);
  if (target && target[0] === layer) return { l: layer, k: target[1], j: target[2] };
  return { l: layer, k: 1, j: undefined };
}

function activation(bp, l, x) {
  return l === 1 ? bp.inputs[x] : bp.layers[l - 2].a[x];
}

function forward(bp, { l, k }, x) {
  const layer = bp.layers[l - 1];
  const row = layer.W[k - 1];
  const inputs = activation(bp, l, x);
  const parts = inputs.map((a, j) => `${num(row[j])}·${factor(a)}`);
  let bias = ` + ${sym("b", l, k)}`;
  if (layer.has_unit) {
    parts.push(`${num(row[row.length - 1])}·1`);
    bias = ` + ${weight(l, k, 0, true)}·1`;
  } else if (layer.b) {
    parts.push(factor(layer.b[k - 1]));
  } else {
    bias = "";
  }
  const z = layer.z[x][k - 1];
  const sigma = layer.activation;
  const zk = sym("z", l, k);
  return [
    `(2) ${zk} = Σⱼ w${sub(k)}ⱼ${sup(l)} aⱼ${sup(l - 1)}${bias} = ${terms(parts)} = ${num(z)}`,
    `    ${sym("a", l, k)} = ${sigma}(${zk}) = ${sigma}(${num(z)}) = ${num(layer.a[x][k - 1])}`,
  ];
}

function output(bp, { l, k }, x) {
  const layer = bp.layers[l - 1];
  const delta = num(layer.delta[x][k - 1]);
  const head = `(9) ${sym("δ", l, k)} = ∂C/∂${sym("a", l, k)} · σ'(${sym("z", l, k)})`;
  if (bp.shortcut) {
    const a = layer.a[x][k - 1];
    const y = bp.targets[x][k - 1];
    return [`${head} = ${sym("a", l, k)} − y${sub(k)} = ${num(a)} − ${num(y)} = ${delta}`,
      `    (${layer.activation} with ${bp.loss_name}: (9) comes to a − y)`];
  }
  if (!layer.sigma_prime) {  // softmax without its cross-entropy: no elementwise σ'
    return [`(9) ${sym("δ", l, k)} = Σⱼ ∂C/∂aⱼ${sup(l)} · ∂aⱼ${sup(l)}/∂${sym("z", l, k)} = ${delta}`,
      `    (${layer.activation} couples the outputs; here ∂C/∂${sym("a", l, k)} = ${num(layer.dC_da[x][k - 1])})`];
  }
  const g = layer.dC_da[x][k - 1];
  return [`${head} = ${factor(g)} · ${num(layer.sigma_prime[x][k - 1])} = ${delta}`];
}

function backward(bp, { l, k }, x) {
  const layer = bp.layers[l - 1];
  const next = bp.layers[l];
  const parts = next.delta[x].map((d, m) => `${factor(d)}·${factor(next.W[m][k - 1])}`);
  const sp = num(layer.sigma_prime[x][k - 1]);
  return [
    `(8) ${sym("δ", l, k)} = (Σₘ δₘ${sup(l + 1)} wₘ${sub(k)}${sup(l + 1)}) · σ'(${sym("z", l, k)})`,
    `    = (${terms(parts)}) · ${sp}`,
    `    = ${factor(layer.dC_da[x][k - 1])} · ${sp} = ${num(layer.delta[x][k - 1])}`,
  ];
}

/** How r enters the batch gradient: "(1/m) Σ … = (1/m) · Σ" for the mean, "Σ" for the sum. */
function reduced(bp, sum) {
  if (bp.r === 1) return { r: "", total: "" };
  return { r: `(1/${bp.m}) `, total: sum === undefined ? "" : ` = (1/${bp.m}) · ${factor(sum)}` };
}

/** The inspected row's own term of a batch gradient, from the breakdown. */
function ownTerm(b, x, what) {
  if (!b || x >= b.terms.length) return [];
  const parts = b.a ? `${factor(b.delta[x])} · ${factor(b.a[x])} = ` : "";
  return [`     sample ${b.rows[x]}'s term: ${what} = ${parts}${num(b.terms[x])} (the table lists every sample's)`];
}

function matching(bp, focus) {
  const b = bp.breakdown;
  return b && JSON.stringify(b.focus) === JSON.stringify(focus) ? b : null;
}

function gradients(bp, { l, k, j }, x) {
  const layer = bp.layers[l - 1];
  const nIn = bp.layers[l - 1].W[0].length - (layer.has_unit ? 1 : 0);
  const jj = j ?? 1;
  const unit = layer.has_unit && jj === nIn + 1;
  const w = weight(l, k, jj, unit);
  const d = sym("δ", l, k);
  const aj = unit ? "1" : `a${sub(jj)}${sup(l - 1)}`;
  const dW = layer.dW[k - 1][jj - 1];
  const lines = [];
  if (bp.m === 1) {
    const a = unit ? 1 : activation(bp, l, x)[jj - 1];
    lines.push(`(10) ∂C/∂${w} = ${d} · ${aj} = ${factor(layer.delta[x][k - 1])} · ${factor(a)} = ${num(dW)}`);
  } else {
    const sum = matching(bp, [l, k, jj]);
    const { r, total } = reduced(bp, sum ? sum.sum : undefined);
    lines.push(`(10) ∂C/∂${w} = ${r}Σₓ ${d}(x) ${aj}(x)${total} = ${num(dW)}`);
    lines.push(...ownTerm(sum, x, `${d} · ${aj}`));
  }
  if (unit) lines.push("     the bias unit's weight: (10) with a = 1 is (14)");
  const g = layer.db ? layer.db[k - 1] : layer.has_unit ? layer.dW[k - 1][nIn] : null;
  const b = layer.has_unit ? weight(l, k, 0, true) : sym("b", l, k);
  if (g === null) {
    lines.push(`(14) layer ${l} has no bias (bias none)`);
  } else if (bp.m === 1) {
    lines.push(`(14) ∂C/∂${b} = ${d} = ${num(g)}`);
  } else {
    const sum = matching(bp, [l, k]);
    const { r, total } = reduced(bp, sum ? sum.sum : undefined);
    lines.push(`(14) ∂C/∂${b} = ${r}Σₓ ${d}(x)${total} = ${num(g)}`);
    lines.push(...ownTerm(sum, x, d));
  }
  if (layer.bias === "frozen") lines.push(`     b is frozen: its gradient is computed, never applied`);
  if (layer.db_rule && g !== null) {
    lines.push(`     WRONG rule (seed 002): every b of layer ${l} gets r Σₓ Σⱼ δⱼ${sup(l)} = ${num(layer.db_rule[k - 1])}`);
  }
  return lines;
}

function update(bp, { l, k, j }) {
  const layer = bp.layers[l - 1];
  const nIn = layer.W[0].length - (layer.has_unit ? 1 : 0);
  const lines = [];
  const rule = (name, value, g, step, after, eq) => {
    if (bp.plain_sgd) {
      return `${eq} ${name} ← ${name} − α ∂C/∂${name} = ${num(value)} − ${bp.lr} · ${factor(g)} = ${num(value)} − ${factor(step)} = ${num(after)}`;
    }
    return `${eq} ${name} ← ${name} − Δ = ${num(value)} − ${factor(step)} = ${num(after)}   (${bp.optimizer}: Δ is its step, not α ∂C/∂${name})`;
  };
  const jj = j ?? 1;
  const unit = layer.has_unit && jj === nIn + 1;
  lines.push(rule(weight(l, k, jj, unit), layer.W[k - 1][jj - 1], layer.dW[k - 1][jj - 1],
    layer.dW_update[k - 1][jj - 1], layer.W_new[k - 1][jj - 1], "(11)"));
  const b = sym("b", l, k);
  if (layer.bias === "frozen") {
    lines.push(`(15) ${b} is frozen: it stays ${num(layer.b[k - 1])} (∂C/∂b = ${num(layer.db[k - 1])} is not applied)`);
  } else if (layer.b) {
    const g = layer.db_rule ? layer.db_rule[k - 1] : layer.db[k - 1];
    lines.push(rule(b, layer.b[k - 1], g, layer.db_update[k - 1], layer.b_new[k - 1], "(15)"));
    if (layer.db_rule) lines.push("     with the WRONG rule (seed 002): ∂C/∂b replaced by the layer's sum of δs");
  } else if (layer.has_unit) {
    lines.push(rule(weight(l, k, 0, true), layer.W[k - 1][nIn], layer.dW[k - 1][nIn],
      layer.dW_update[k - 1][nIn], layer.W_new[k - 1][nIn], "(15)"));
  } else {
    lines.push(`(15) layer ${l} has no bias (bias none)`);
  }
  lines.push(bp.source === "batch" ? "     what the next step subtracts" : "     a step on this sample alone would subtract this");
  return lines;
}

/**
 * The equation of `stage` for `target` ([l, k] or [l, k, j], or null: the stage's first
 * neuron), on sample row x of the view (0-based among the rows sent).
 */
export function equation(bp, stage, target, x) {
  const L = bp.layers.length;
  const who = subject(stage, target, L);
  const write = { forward, output, backward, gradients, update }[stage.kind];
  const lines = write(bp, who, x);
  if (stage.kind !== "update" && !(stage.kind === "gradients" && bp.m > 1)) {
    const where = bp.source === "sample" ? `sample ${bp.rows[x]}` : `sample ${bp.rows[x]} (${x + 1} of ${bp.m} in the batch)`;
    lines.push(`     for ${where}`);
  }
  return lines.join("\n");
}
