// data.js — the data column and the plot's points: data-set thumbnails (from the server's
// previews), the training and test points over the output heatmap, click to add a point,
// and the CSV upload.

import { element } from "./controls.js";
import { css, pointColor } from "./heatmap.js";

function toPixel(domain, size, x1, x2) {
  const [a, b, c, d] = domain;
  return [((x1 - a) / (b - a)) * size, ((d - x2) / (d - c)) * size];
}

/** Points [x1, x2, label] on a canvas over the square `domain`, in their class colours. */
export function drawPoints(canvas, domain, points, task, nClasses, stroke, radius) {
  const context = canvas.getContext("2d");
  const size = canvas.width;
  context.lineWidth = 1;
  context.strokeStyle = stroke;
  for (const [x1, x2, label] of points) {
    const [px, py] = toPixel(domain, size, x1, x2);
    context.beginPath();
    context.arc(px, py, radius, 0, 2 * Math.PI);
    context.fillStyle = css(pointColor(task, label, nClasses));
    context.fill();
    if (stroke) context.stroke();
  }
}

/** Thumbnails of every data set; clicking one sets `dataset`. */
export function thumbnails(container, previews, choose) {
  const buttons = {};
  for (const preview of previews) {
    const button = element("button", { type: "button", class: "thumb", "data-testid": "dataset-thumb",
      "data-value": preview.name, title: preview.name, "aria-label": `data set ${preview.name}` });
    const canvas = element("canvas", { width: "48", height: "48" });
    const classes = new Set(preview.points.map((p) => p[2])).size;
    drawPoints(canvas, preview.domain, preview.points, preview.task, classes, "", 1.5);
    button.append(canvas, element("span", {}, preview.name));
    button.addEventListener("click", () => choose(preview.name));
    container.append(button);
    buttons[preview.name] = button;
  }
  return (name) => {
    for (const [key, button] of Object.entries(buttons)) button.classList.toggle("selected", key === name);
  };
}

/** The training point nearest (x1, x2) within a few pixels' distance, or null. */
export function nearest(data, x1, x2) {
  const [a, b] = data.domain;
  const reach = (0.03 * (b - a)) ** 2;
  let best = null;
  let bestDistance = reach;
  data.train.forEach(([p1, p2], i) => {
    const distance = (p1 - x1) ** 2 + (p2 - x2) ** 2;
    if (distance <= bestDistance) {
      best = i;
      bestDistance = distance;
    }
  });
  return best;
}

/** The points layer over the output heatmap, clicks that add points, and rings around the
 * points step mode inspects (on `marks`, a canvas over the points). */
export class PointsView {
  constructor(canvas, addPoint, marks) {
    this.canvas = canvas;
    this.marks = marks;
    this.marked = "";
    this.data = null;
    canvas.addEventListener("click", (event) => {
      if (!this.data) return;
      const box = canvas.getBoundingClientRect();
      const [a, b, c, d] = this.data.domain;
      const x1 = a + ((event.clientX - box.left) / box.width) * (b - a);
      const x2 = d - ((event.clientY - box.top) / box.height) * (d - c);
      addPoint(x1, x2, event.shiftKey);
    });
  }

  /** Rings around `inspected` points [x1, x2] (none: cleared). */
  mark(inspected) {
    this.inspected = inspected;
    const key = JSON.stringify(inspected);
    if (key === this.marked || !this.data) return;
    this.marked = key;
    const ratio = window.devicePixelRatio || 1;
    const size = Math.round(this.marks.clientWidth * ratio);
    this.marks.width = size;
    this.marks.height = size;
    const context = this.marks.getContext("2d");
    context.clearRect(0, 0, size, size);
    context.lineWidth = 2 * ratio;
    context.strokeStyle = "#111";
    for (const [x1, x2] of inspected) {
      const [px, py] = toPixel(this.data.domain, size, x1, x2);
      context.beginPath();
      context.arc(px, py, 7 * ratio, 0, 2 * Math.PI);
      context.stroke();
    }
  }

  /** data: GET /api/data. */
  draw(data, showTest) {
    this.marked = "";
    this.data = data;
    const size = this.canvas.clientWidth * (window.devicePixelRatio || 1);
    this.canvas.width = Math.round(size);
    this.canvas.height = Math.round(size);
    const context = this.canvas.getContext("2d");
    context.clearRect(0, 0, size, size);
    const k = data.classes ? data.classes.length : 0;
    const radius = 3.5 * (window.devicePixelRatio || 1);
    drawPoints(this.canvas, data.domain, data.train, data.task, k, "white", radius);
    if (showTest) drawPoints(this.canvas, data.domain, data.test, data.task, k, "black", radius);
    if (this.inspected) this.mark(this.inspected);
  }
}

/** The plot's extent along each axis, from the data's square. */
export function axes(container, domain) {
  const [a, b, c, d] = domain.map((v) => Number(v.toFixed(2)));
  container.replaceChildren(
    element("span", { class: "axis-x" }, `x₁ from ${a} to ${b} →`),
    element("span", { class: "axis-y" }, `x₂ from ${c} to ${d} ↑`),
  );
}
