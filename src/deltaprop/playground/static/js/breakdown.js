// breakdown.js — seed 002's question as a table: for the selected weight (or bias), each
// sample's term of its gradient, δ_k a_j (or δ_k), then their sum and mean, the one the step
// uses marked by the `reduction` setting. The sum runs over samples, never over a layer's
// neurons. Every number is the server's (the view's `breakdown`).

import { element } from "./controls.js";
import { num, sub, sup, sym, weight } from "./format.js";

function cell(tag, text, attributes = {}) {
  return element(tag, attributes, text);
}

/**
 * Draws `b` (a view's breakdown, or undefined) into `table`; clicking a row calls
 * choose(x) with the row's position. `x` is the row whose equation is shown.
 */
export function drawBreakdown(table, caption, b, x, choose) {
  if (!b) {
    caption.textContent = "Select a weight or a neuron (click it) to see each sample's term of its gradient.";
    table.replaceChildren();
    return;
  }
  const [l, k, j] = b.focus;
  const d = sym("δ", l, k);
  const a = b.kind === "unit" ? "1" : j ? `a${sub(j)}${sup(l - 1)}` : "";
  const name = b.kind === "b" ? (b.bias === "unit" ? weight(l, k, 0, true) : sym("b", l, k)) : weight(l, k, j, b.kind === "unit");
  const term = b.kind === "b" ? `${d}(x)` : `${d}(x) · ${a}(x)`;
  caption.textContent = `∂C/∂${name} over the ${b.m} sample${b.m === 1 ? "" : "s"} inspected: each sample's term ${term} (eq. ${b.kind === "b" ? "14" : "10"}), summed over samples — never over the layer's neurons (seed 002).`;
  // a weight's row: δ, a and their product; a bias's: δ, which is its term
  const head = element("tr");
  head.append(cell("th", "sample"), cell("th", d));
  if (b.kind !== "b") head.append(cell("th", a), cell("th", "term"));
  const rows = b.rows.map((sample, i) => {
    const tr = element("tr", { "data-testid": "breakdown-row", class: i === x ? "current" : "" });
    tr.append(cell("td", String(sample)), cell("td", num(b.delta[i])));
    if (b.kind !== "b") tr.append(cell("td", num(b.a[i])), cell("td", num(b.terms[i])));
    tr.addEventListener("click", () => choose(i));
    return tr;
  });
  const span = b.kind === "b" ? 1 : 3;
  const more = [];
  if (b.m > b.rows.length) {
    const tr = element("tr");
    tr.append(cell("td", `… ${b.m - b.rows.length} more samples (in the sum and mean)`, { colspan: String(span + 1) }));
    more.push(tr);
  }
  const total = (label, value, kind) => {
    const used = b.used === kind;
    const tr = element("tr", { class: used ? "used" : "", "data-testid": `breakdown-${kind}` });
    tr.append(cell("th", label, { colspan: String(span) }), cell("td", num(value)));
    tr.append(cell("td", used ? `← the step uses the ${kind} (reduction = ${b.used})` : "", { class: "note" }));
    return tr;
  };
  const gradient = element("tr", { "data-testid": "breakdown-gradient" });
  gradient.append(cell("th", `∂C/∂${name} (backprop)`, { colspan: String(span) }),
    cell("td", num(b.gradient)));
  table.replaceChildren(head, ...rows, ...more, total(`Σ over ${b.m} sample${b.m === 1 ? "" : "s"}`, b.sum, "sum"),
    total(`mean (Σ / ${b.m})`, b.mean, "mean"), gradient);
}
