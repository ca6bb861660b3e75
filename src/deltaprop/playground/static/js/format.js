// format.js — numbers and the seeds' symbols as text: w₁₂², δ₁³, 0.1465. Text only: every
// number comes from the engine through the API.

const DIGITS = { sub: "₀₁₂₃₄₅₆₇₈₉", sup: "⁰¹²³⁴⁵⁶⁷⁸⁹" };

/** n in subscript or superscript digits: w₁₂³. */
export function script(kind, n) {
  return String(n).split("").map((d) => (/[0-9]/.test(d) ? DIGITS[kind][Number(d)] : d)).join("");
}

export const sub = (n) => script("sub", n);
export const sup = (n) => script("sup", n);

/**
 * A number as the equations print it: 4 decimals (as `deltaprop explain`), or 4
 * significant digits when it is too small or large for them; a minus sign, not a hyphen.
 */
export function num(v) {
  if (v === null || v === undefined) return "—";
  if (v === 0) return "0";
  const size = Math.abs(v);
  const text = size >= 1e-3 && size < 1e5 ? v.toFixed(4) : v.toPrecision(4);
  return text.replace("-", "−");
}

/** A number in parentheses when negative, for products: 0.5·(−0.3). */
export function factor(v) {
  return v !== null && v !== undefined && v < 0 ? `(${num(v)})` : num(v);
}

/** The seeds' symbol of a quantity of neuron k in layer l: z₁², δ₁², b₁². */
export function sym(name, l, k) {
  return `${name}${sub(k)}${sup(l)}`;
}

/** w_kj^l, or w_kᵤ^l for the bias unit's weight. */
export function weight(l, k, j, unit = false) {
  return `w${sub(k)}${unit ? "ᵤ" : sub(j)}${sup(l)}`;
}

/** A short label of a focus [l, k] or [l, k, j]: "neuron 1 of layer 2", "w₁₃²". */
export function focusLabel(focus, unitColumn) {
  if (!focus || focus.length < 2) return "nothing selected";
  const [l, k, j] = focus;
  if (focus.length === 2) return `neuron ${k} of layer ${l}`;
  return weight(l, k, j, j === unitColumn);
}
