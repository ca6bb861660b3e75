// heatmap.js — paints the server's heatmaps (bytes over a range, see frames.py) on canvases.
// Colours only: every value comes from the frame; the page computes none.

export const WHITE = [232, 234, 235];
export const ORANGE = [245, 147, 34];  // negative values; class 0
export const BLUE = [8, 119, 189];  // positive values; class 1
export const PALETTE = [ORANGE, BLUE, [44, 160, 44], [148, 103, 189], [214, 39, 40],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];

function mix(a, b, t) {
  return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t));
}

/** Orange below 0, white at 0, blue above, saturating at ±1. */
export function diverging(t) {
  const c = Math.max(-1, Math.min(1, t));
  return c < 0 ? mix(WHITE, ORANGE, -c) : mix(WHITE, BLUE, c);
}

export function css(rgb) {
  return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
}

/** The value byte q of `map` stands for (frames.py's quantisation). */
export function valueOf(map, q) {
  return map.lo + (q / 255) * (map.hi - map.lo);
}

function paint(canvas, size, colorAt) {
  if (canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
  const context = canvas.getContext("2d");
  const image = context.createImageData(size, size);
  const pixels = image.data;
  for (let p = 0; p < size * size; p += 1) {
    const rgb = colorAt(p);
    pixels.set(rgb, 4 * p);
    pixels[4 * p + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/**
 * A neuron's (or feature's) map on the diverging scale: 0 is white, ±s full colour, with
 * s = max(1, |lo|, |hi|) — so tanh and sigmoid read on their natural [−1, 1] scale and an
 * unbounded ReLU on its own range.
 */
export function paintNeuron(canvas, map) {
  const scale = Math.max(1, Math.abs(map.lo), Math.abs(map.hi));
  const lut = Array.from({ length: 256 }, (_, q) => diverging(valueOf(map, q) / scale));
  paint(canvas, map.size, (p) => lut[map.bytes[p]]);
}

/**
 * The output over the plane. Classification: two classes on orange–white–blue by the
 * probability of class 1; more classes in the most probable class's colour, faded towards
 * white by how unsure the network is; discretized: each point in its predicted class's
 * colour. Regression: the value on the diverging scale.
 */
export function paintOutput(canvas, frame, discretize) {
  const heat = frame.heat;
  if (heat.y) {
    const map = heat.y;
    const scale = Math.max(1, Math.abs(map.lo), Math.abs(map.hi));
    const lut = Array.from({ length: 256 }, (_, q) => diverging(valueOf(map, q) / scale));
    paint(canvas, map.size, (p) => lut[map.bytes[p]]);
    return;
  }
  const classes = frame.maps.filter((m) => m.key.startsWith("p/")).map((m) => heat[m.key]);
  const predicted = heat.class;
  const k = classes.length;
  if (discretize) {
    const colors = k === 2 ? [mix(WHITE, ORANGE, 0.6), mix(WHITE, BLUE, 0.6)]
      : PALETTE.slice(0, k).map((c) => mix(WHITE, c, 0.6));
    paint(canvas, predicted.size, (p) => colors[predicted.bytes[p]] ?? WHITE);
    return;
  }
  if (k === 2) {
    const map = classes[1];
    const lut = Array.from({ length: 256 }, (_, q) => diverging(2 * valueOf(map, q) - 1));
    paint(canvas, map.size, (p) => lut[map.bytes[p]]);
    return;
  }
  paint(canvas, predicted.size, (p) => {
    const c = predicted.bytes[p];
    const sure = (valueOf(classes[c], classes[c].bytes[p]) - 1 / k) / (1 - 1 / k);
    return mix(WHITE, PALETTE[c] ?? WHITE, Math.max(0, Math.min(1, sure)));
  });
}

/** The colour of a data point: its class, or its target on the diverging scale. */
export function pointColor(task, label, nClasses) {
  if (task === "regression") return diverging(label);
  return nClasses === 2 ? [ORANGE, BLUE][label] : PALETTE[label] ?? WHITE;
}
