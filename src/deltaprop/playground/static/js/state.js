// state.js — the settings table (GET /api/settings, from settings.py) drives the URL hash:
// a setting added there is shareable here with no change. Like TF Playground's state.ts.

const DERIVED = ["problem", "output", "loss"];  // follow the data set unless named

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The settings table, with the hash written and read from its rows alone. */
export class Settings {
  constructor(table) {
    this.rows = table.settings;
    this.byName = Object.fromEntries(this.rows.map((row) => [row.name, row]));
    this.datasets = table.datasets;
    this.features = table.features;
    this.limits = table.limits;
  }

  /** Is `value` the row's default? Per-layer lists are default when every entry is. */
  isDefault(row, value) {
    if (row.kind === "layers") return value.every((v) => v === row.default);
    return same(value, row.default);
  }

  format(row, value) {
    if (row.kind === "layers") return new Set(value).size === 1 ? value[0] : value.join(",");
    if (Array.isArray(value)) return value.join(",");
    return String(value);
  }

  parse(row, text) {
    if (!row) return text;
    if (row.kind === "int" || row.kind === "float") {
      const n = Number(text);
      return text.trim() === "" || Number.isNaN(n) ? text : n;  // the server names a bad one
    }
    if (row.kind === "bool") return text === "true" ? true : text === "false" ? false : text;
    if (row.kind === "sizes" || row.kind === "focus") return text === "" ? [] : text.split(",").map((s) => Number(s));
    if (row.kind === "subset") return text.split(",");
    if (row.kind === "layers") return text.includes(",") ? text.split(",") : text;
    return text;
  }

  /** The hash of a configuration: every setting that differs from its default. */
  toHash(config) {
    const parts = [];
    for (const row of this.rows) {
      const value = config[row.name];
      if (value === undefined || this.isDefault(row, value)) continue;
      parts.push(`${row.name}=${encodeURIComponent(this.format(row, value))}`);
    }
    return parts.join("&");
  }

  /** The settings a hash names, typed by the table (unknown names are passed on as text). */
  fromHash(hash) {
    const out = {};
    for (const part of hash.replace(/^#/, "").split("&")) {
      if (!part) continue;
      const at = part.indexOf("=");
      const name = decodeURIComponent(at < 0 ? part : part.slice(0, at));
      const text = at < 0 ? "" : decodeURIComponent(part.slice(at + 1));
      out[name] = this.parse(this.byName[name], text);
    }
    return out;
  }

  /**
   * The whole configuration a link stands for: the defaults, overlaid with the hash. The
   * problem, output and loss follow the data set unless the hash names them.
   */
  fromLink(hash) {
    const named = this.fromHash(hash);
    const config = {};
    for (const row of this.rows) {
      if (DERIVED.includes(row.name) && !(row.name in named)) continue;
      config[row.name] = row.default;
    }
    return Object.assign(config, named);
  }
}
