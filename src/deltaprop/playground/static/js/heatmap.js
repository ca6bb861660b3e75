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

// The diverging scale at 511 steps from −1 to 1, as 32-bit RGBA pixels (little-endian).
const STEPS = 255;
const SCALE = new Uint32Array(2 * STEPS + 1);
for (let i = 0; i <= 2 * STEPS; i += 1) {
  const [r, g, b] = diverging((i - STEPS) / STEPS);
  SCALE[i] = (255 << 24) | (b << 16) | (g << 8) | r;
}
const rgba = ([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;

/** Puts size² 32-bit RGBA pixels on the canvas (its own size; CSS scales it). */
function putPixels(canvas, size, pixels) {
  if (canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
  const context = canvas.getContext("2d");
  const image = context.createImageData(size, size);
  new Uint32Array(image.data.buffer).set(pixels);
  context.putImageData(image, 0, 0);
}

/** Paints size² pixels, pixel p in colour lut[bytes[p]]. */
function paintBytes(canvas, size, bytes, lut) {
  const pixels = new Uint32Array(size * size);
  for (let p = 0; p < size * size; p += 1) pixels[p] = lut[bytes[p]];
  putPixels(canvas, size, pixels);
}

// The output's background is paler than the points drawn on it (at most 60 % colour), so
// that a point of either class stands out wherever it lies.
const BACKGROUND = 0.6;

/** For each byte q of `map`, its value on the diverging scale saturating at ±scale, with
 * at most `strength` of the full colour. */
function divergingLut(map, scale, strength = 1) {
  const lut = new Uint32Array(256);
  for (let q = 0; q < 256; q += 1) {
    const t = strength * Math.max(-1, Math.min(1, valueOf(map, q) / scale));
    lut[q] = SCALE[Math.round(t * STEPS) + STEPS];
  }
  return lut;
}

/**
 * A neuron's (or feature's) map put at (x, y) of a shared canvas, one pixel per point, on
 * the diverging scale: 0 is white, ±s full colour, with s = max(1, |lo|, |hi|) — so tanh and
 * sigmoid read on their natural [−1, 1] scale and an unbounded ReLU on its own range.
 */
export function putNeuron(context, map, x, y) {
  const scale = Math.max(1, Math.abs(map.lo), Math.abs(map.hi));
  const lut = divergingLut(map, scale);
  const image = context.createImageData(map.size, map.size);
  const pixels = new Uint32Array(image.data.buffer);
  for (let p = 0; p < map.size * map.size; p += 1) pixels[p] = lut[map.bytes[p]];
  context.putImageData(image, x, y);
}

/**
 * Flat colours at (x, y) of a shared canvas, size × size pixels: one vertical band per value
 * (each in [−1, 1], on the diverging scale); no values: cleared.
 */
export function putBands(context, values, x, y, size) {
  if (!values.length) {
    context.clearRect(x, y, size, size);
    return;
  }
  const image = context.createImageData(size, size);
  const pixels = new Uint32Array(image.data.buffer);
  const colours = values.map((v) => SCALE[Math.round(Math.max(-1, Math.min(1, v ?? 0)) * STEPS) + STEPS]);
  for (let column = 0; column < size; column += 1) {
    const c = colours[Math.min(values.length - 1, Math.floor((column * values.length) / size))];
    for (let row = 0; row < size; row += 1) pixels[row * size + column] = c;
  }
  context.putImageData(image, x, y);
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
    paintBytes(canvas, map.size, map.bytes, divergingLut(map, scale, BACKGROUND));
    return;
  }
  const classes = frame.maps.filter((m) => m.key.startsWith("p/")).map((m) => heat[m.key]);
  const predicted = heat.class;
  const k = classes.length;
  if (discretize) {
    const colors = (k === 2 ? [ORANGE, BLUE] : PALETTE.slice(0, k)).map((c) => mix(WHITE, c, BACKGROUND));
    const lut = Uint32Array.from({ length: 256 }, (_, c) => rgba(colors[c] ?? WHITE));
    paintBytes(canvas, predicted.size, predicted.bytes, lut);
    return;
  }
  if (k === 2) {
    const map = classes[1];  // probability of class 1, centred on ½
    const lut = Uint32Array.from({ length: 256 }, (_, q) => SCALE[Math.round(BACKGROUND * (2 * valueOf(map, q) - 1) * STEPS) + STEPS]);
    paintBytes(canvas, map.size, map.bytes, lut);
    return;
  }
  // for each class c and byte q of its probability map: c's colour, faded by how unsure
  const luts = classes.map((map, c) => Uint32Array.from({ length: 256 }, (_, q) => {
    const sure = (valueOf(map, q) - 1 / k) / (1 - 1 / k);
    return rgba(mix(WHITE, PALETTE[c] ?? WHITE, BACKGROUND * Math.max(0, Math.min(1, sure))));
  }));
  const size = predicted.size;
  const pixels = new Uint32Array(size * size);
  for (let p = 0; p < size * size; p += 1) {
    const c = predicted.bytes[p];
    pixels[p] = luts[c] ? luts[c][classes[c].bytes[p]] : rgba(WHITE);
  }
  putPixels(canvas, size, pixels);
}

/** The colour of a data point: its class, or its target on the diverging scale. */
export function pointColor(task, label, nClasses) {
  if (task === "regression") return diverging(label);
  return nClasses === 2 ? [ORANGE, BLUE][label] : PALETTE[label] ?? WHITE;
}
