// Small DOM and formatting helpers shared by every page: no framework, no build step.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Build an element: h("a", {href: "#/runs", class: "x"}, "text", child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  return fill(el, attrs, children);
}

/** The same for SVG elements (the timeline and the graph are drawn with these). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  return fill(el, attrs, children);
}

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Status glyphs match the CLI's step tree, and the word is always shown next to
// the glyph: status is never carried by colour alone.
export const GLYPHS = {
  completed: "✓",
  failed: "✗",
  skipped: "⊘",
  rolled_back: "↺",
  running: "●",
  waiting: "◷",
  pending: "○",
  cancelled: "■",
  interrupted: "■",
};

export function badge(status) {
  const name = status || "unknown";
  return h("span", { class: `badge status-${name}`, "data-status": name },
    h("span", { "aria-hidden": "true" }, GLYPHS[name] || "?"), " ", name.replace("_", " "));
}

/** Seconds or milliseconds since the epoch → a Date (the API uses both). */
export function toDate(ts) {
  if (ts === null || ts === undefined || ts === "") return null;
  if (typeof ts === "string") {
    const d = new Date(ts);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return new Date(ts > 1e11 ? ts : ts * 1000);
}

export function toMillis(ts) {
  const d = toDate(ts);
  return d ? d.getTime() : null;
}

export function when(ts) {
  const d = toDate(ts);
  if (!d) return "–";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeTag(ts) {
  const d = toDate(ts);
  if (!d) return "–";
  return h("time", { datetime: d.toISOString() }, when(ts));
}

/** 0ms, 850ms, 2.4s, 3m 5s, 2h 10m: the CLI's duration format. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)}s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min}m ${Math.round(sec % 60)}s`;
  const hours = Math.floor(min / 60);
  if (hours < 48) return `${hours}h ${min % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function short(value, limit = 80) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
}

/** Pretty-printed JSON with light syntax colouring, in a labelled, focusable <pre>. */
export function jsonBlock(value, label) {
  const pre = h("pre", { class: "json", tabindex: "0", "aria-label": label || "JSON" });
  if (value === undefined) {
    pre.append(h("span", { class: "j-null" }, "—"));
    return pre;
  }
  const text = JSON.stringify(value, null, 2) ?? "null";
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const m of text.matchAll(token)) {
    pre.append(text.slice(last, m.index));
    if (m[1] !== undefined) {
      pre.append(h("span", { class: m[2] ? "j-key" : "j-str" }, m[1]));
      if (m[2]) pre.append(m[2]);
    } else if (m[3] !== undefined) {
      pre.append(h("span", { class: "j-lit" }, m[3]));
    } else {
      pre.append(h("span", { class: "j-num" }, m[4]));
    }
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

export function runLink(id, text) {
  return h("a", { href: `#/runs/${encodeURIComponent(id)}`, class: "mono" }, text || id);
}

export function workflowLink(tag) {
  return h("a", { href: `#/workflows/${encodeURIComponent(tag)}` }, tag);
}

/** A definition list from [[term, value], ...]; rows whose value is null are left out. */
export function facts(rows, attrs = {}) {
  return h("dl", { class: "facts", ...attrs },
    rows.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section", { "aria-labelledby": id, class: "panel" }, h("h2", { id }, title), ...children);
}

export function message(text, kind = "info") {
  return h("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Approximate rendered width of monospace SVG text (the drawings use a monospace font). */
export function textWidth(text, size = 12) {
  return String(text).length * size * 0.6;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
