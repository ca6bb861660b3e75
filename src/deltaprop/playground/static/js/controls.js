// controls.js — one labelled control per setting, built from its row of the settings table,
// with data-testid "set-<name>" (the API's config key). A change calls onChange(name, value).

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

export { element };

/**
 * Sets a node's text only when it differs: writing even the same text replaces the node's
 * text and makes the browser lay the page out again, on every frame.
 */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Sets an attribute only when it differs (the same reason as setText). */
export function setAttribute(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

function fillSelect(select, values, labelOf) {
  select.replaceChildren(...values.map((v) => element("option", { value: String(v) }, labelOf(v))));
}

/**
 * A control for `row`: a select for choices and for numbers with offered values, a slider
 * for fractions, a number box otherwise, a checkbox for booleans, a text box for the hidden
 * sizes. Returns {node, set(value)}; `testid` overrides "set-<name>" (per-layer controls).
 */
export function makeControl(row, onChange, { testid, label, choices } = {}) {
  const wrap = element("label", { class: `control control-${row.kind}` });
  const title = element("span", { class: "control-label" }, label ?? row.label);
  if (row.help) wrap.title = row.help;
  let input;
  let read;
  let write;
  if (row.kind === "bool") {
    input = element("input", { type: "checkbox" });
    read = () => input.checked;
    write = (v) => { input.checked = v; };
    wrap.append(input, title);
  } else if (row.kind === "choice" || row.kind === "layers" || row.options.length) {
    input = element("select");
    const values = choices ?? (row.options.length ? row.options : row.choices);
    fillSelect(input, values, (v) => String(v));
    const numeric = row.kind === "int" || row.kind === "float";
    read = () => (numeric ? Number(input.value) : input.value);
    write = (v) => {
      const text = Array.isArray(v) ? (new Set(v).size === 1 ? v[0] : "mixed") : String(v);
      if (![...input.options].some((o) => o.value === text)) {
        const extra = element("option", { value: text }, text);  // set by a link, or "mixed"
        if (text === "mixed") extra.disabled = true;
        input.append(extra);
      }
      input.value = text;
    };
    wrap.append(title, input);
  } else if (row.kind === "sizes" || row.kind === "focus") {
    input = element("input", { type: "text", size: row.kind === "focus" ? "7" : "12", spellcheck: "false" });
    read = () => (input.value.trim() === "" ? [] : input.value.split(",").map((s) => Number(s.trim())));
    write = (v) => { input.value = v.join(","); };
    wrap.append(title, input);
  } else if (row.kind === "float" && row.high <= 1) {
    input = element("input", { type: "range", min: String(row.low), max: String(row.high), step: "0.05" });
    const shown = element("span", { class: "control-value" });
    read = () => Number(input.value);
    write = (v) => { input.value = String(v); shown.textContent = String(v); };
    input.addEventListener("input", () => { shown.textContent = input.value; });
    wrap.append(title, input, shown);
  } else {
    input = element("input", { type: "number", min: String(row.low), max: String(row.high) });
    input.step = row.kind === "int" ? "1" : "any";
    read = () => Number(input.value);
    write = (v) => { input.value = String(v); };
    wrap.append(title, input);
  }
  input.dataset.testid = testid ?? `set-${row.name}`;
  input.addEventListener("change", () => onChange(row.name, read()));
  const typed = input.type === "text" || input.type === "number";
  // a box being typed in keeps what the user typed; everything else shows the server's value
  return { node: wrap, input, set: (v) => { if (!typed || document.activeElement !== input) write(v); } };
}

/** Controls for many rows, placed by name into containers; returns a setter for a config. */
export function buildControls(settings, placement, onChange) {
  const controls = {};
  for (const [name, container] of placement) {
    const row = settings.byName[name];
    let choices;
    if (name === "dataset") choices = [...settings.datasets.classification, ...settings.datasets.regression];
    controls[name] = makeControl(row, onChange, { choices });
    container.append(controls[name].node);
  }
  return (config) => {
    for (const [name, control] of Object.entries(controls)) {
      if (config[name] !== undefined) control.set(config[name]);
    }
  };
}
