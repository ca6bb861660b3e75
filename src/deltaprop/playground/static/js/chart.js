// chart.js — train and test loss against the step, as the server recorded them (history).

const TRAIN = "#333";
const TEST = "#999";

function line(context, steps, values, x, y, color) {
  context.strokeStyle = color;
  context.lineWidth = 1.5;
  context.beginPath();
  let started = false;
  steps.forEach((step, i) => {
    const v = values[i];
    if (v === null || v === undefined) return;
    if (started) context.lineTo(x(step), y(v));
    else context.moveTo(x(step), y(v));
    started = true;
  });
  context.stroke();
}

// Each canvas's size on the page, kept by an observer: reading it while drawing, after a
// frame's text was written, made the browser lay the page out again on every frame.
const sizes = new WeakMap();
const observer = new ResizeObserver((entries) => {
  for (const { target } of entries) sizes.set(target, [target.clientWidth, target.clientHeight]);
});

function sizeOf(canvas) {
  if (!sizes.has(canvas)) {
    sizes.set(canvas, [canvas.clientWidth, canvas.clientHeight]);
    observer.observe(canvas);
  }
  return sizes.get(canvas);
}

/** Draws history = {step, train, test} on `canvas`, y from 0 to the largest loss. */
export function drawLosses(canvas, history) {
  const ratio = window.devicePixelRatio || 1;
  const [width, height] = sizeOf(canvas);
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const steps = history.step;
  if (!steps.length) return;
  const all = [...history.train, ...history.test].filter((v) => v !== null);
  const top = Math.max(...all, 1e-12);
  const last = Math.max(steps[steps.length - 1], 1);
  const pad = 4;
  const x = (step) => pad + (step / last) * (width - 2 * pad);
  const y = (v) => height - pad - (v / top) * (height - 2 * pad);
  context.strokeStyle = "#ddd";
  context.lineWidth = 1;
  context.strokeRect(0.5, 0.5, width - 1, height - 1);
  line(context, steps, history.test, x, y, TEST);
  line(context, steps, history.train, x, y, TRAIN);
  context.fillStyle = "#777";
  context.font = "10px sans-serif";
  context.textAlign = "right";
  context.fillText(`loss ≤ ${top.toPrecision(3)}`, width - pad, 12);
  context.fillText(`step ${steps[steps.length - 1]}`, width - pad, height - 6);
}
