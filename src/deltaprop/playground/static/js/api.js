// api.js — the page's only door to the server: JSON requests and the socket of frames.
// Every number the page shows arrives through here; the page computes none of them.

/** A request the server refused; `message` is its one-line JSON error. */
export class ApiError extends Error {}

async function request(method, path, body, type = "application/json") {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = type === "application/json" ? JSON.stringify(body) : body;
    init.headers["Content-Type"] = type;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let value = text;
  try {
    value = JSON.parse(text);
  } catch {
    // a text answer (the snippet) stays text
  }
  if (!response.ok) {
    throw new ApiError(value && value.error ? value.error : `${response.status} ${response.statusText}`);
  }
  return value;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const upload = (path, file) => request("POST", path, file, "text/csv");

/**
 * A binary frame: uint32 length n, n bytes of JSON (the state), then the heatmaps.
 * Returns the state with `heat[key] = {size, lo, hi, bytes}` for every map.
 */
export function decodeFrame(buffer) {
  const n = new DataView(buffer).getUint32(0, true);
  const state = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  state.heat = {};
  for (const m of state.maps) {
    state.heat[m.key] = { ...m, bytes: new Uint8Array(buffer, 4 + n + m.offset, m.size * m.size) };
  }
  return state;
}

/**
 * Pulls frames: one is asked for as soon as the last has arrived, and the newest is drawn
 * on the next animation frame — so a slow page gets fewer, newer frames and nothing queues.
 * Reconnects if the socket drops.
 */
export function openFrames(onFrame, onStatus) {
  let socket = null;
  let closed = false;
  let pending = null;  // the newest frame not drawn yet
  const draw = () => {
    const frame = pending;
    pending = null;
    if (frame) onFrame(frame);
  };
  const connect = () => {
    socket = new WebSocket(`ws://${location.host}/ws`);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      onStatus(true);
      socket.send("next");
    };
    socket.onmessage = (event) => {
      socket.send("next");  // the server builds the next frame while this one is drawn
      if (typeof event.data === "string") return;  // "idle": nothing changed for a while
      if (pending === null) requestAnimationFrame(draw);
      pending = decodeFrame(event.data);
    };
    socket.onclose = () => {
      onStatus(false);
      if (!closed) setTimeout(connect, 1000);
    };
  };
  connect();
  return { close() { closed = true; socket.close(); } };
}
