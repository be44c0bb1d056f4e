// A compiled definition as a graph: its operations top to bottom (steps,
// checkpoints, sleeps, signal waits, child workflows), conditions written on
// the edges that lead into the steps they guard, and an "else" edge around each
// guarded group to where the run continues when the condition is false.

import { duration, s, textWidth } from "./dom.js";

const NODE_H = 40;
const GAP = 44;
const PAD = 16;
const FONT = 12;

/** One node per operation, with the step options merged in from `schema.steps`. */
export function graphNodes(schema) {
  const steps = new Map((schema.steps || []).map((st) => [st.tag, st]));
  const ops = (schema.operations && schema.operations.length ? schema.operations : schema.steps || []);
  return ops.map((op) => {
    const step = op.kind === "step" ? { ...op, ...(steps.get(op.tag) || {}) } : op;
    return { kind: op.kind || "step", label: nodeLabel(step), marks: nodeMarks(step), condition: step.condition || null, op: step };
  });
}

function nodeLabel(op) {
  switch (op.kind) {
    case "step": return op.tag;
    case "checkpoint": return `⚑ checkpoint ${op.name ?? op.tag ?? ""}`;
    case "sleep": return `◷ sleep ${op.duration_ms !== undefined ? duration(op.duration_ms) : op.duration ?? ""}${op.name ? ` (${op.name})` : ""}`;
    case "signal": return op.hook ? `⚓ wait for hook ${op.hook}` : `✉ wait for ${(op.signals || []).join(" | ")}`;
    case "hook": return `⚓ create hook ${op.name ?? ""}`;
    case "child": return `⎘ child ${op.workflow ?? op.tag ?? ""}`;
    case "component": return `${op.component}.${op.method}`;
    case "rollback": return `↺ trigger rollback`;
    case "patch": return `patched ${op.change_id ?? ""}`;
    case "event": return `emit ${op.type ?? ""}`;
    default: return String(op.kind);
  }
}

function nodeMarks(op) {
  const marks = [];
  if (op.kind === "step") {
    if (op.has_rollback) marks.push("↺ rollback");
    if (op.critical) marks.push("critical");
    const o = op.options || {};
    if (o.retries) marks.push(`retries ${o.retries}`);
    if (o.timeout_ms) marks.push(`timeout ${duration(o.timeout_ms)}`);
    if (op.allow_fail) marks.push("allow fail");
    if (op.parallel) marks.push("parallel");
    if (op.dynamic) marks.push("dynamic");
  }
  if (op.kind === "signal" && op.timeout_ms) marks.push(`timeout ${duration(op.timeout_ms)}`);
  if (op.kind === "child" && op.child_id) marks.push(`as ${typeof op.child_id === "string" ? op.child_id : JSON.stringify(op.child_id)}`);
  return marks;
}

/** The graph as an <svg role="img">; child workflow nodes link to their workflow page. */
export function drawGraph(schema) {
  const nodes = [{ kind: "start", label: "start", marks: [], condition: null }, ...graphNodes(schema), { kind: "end", label: "end", marks: [], condition: null }];
  // Groups of consecutive nodes guarded by the same condition.
  const groups = [];
  for (let i = 1; i < nodes.length - 1; i++) {
    const cond = nodes[i].condition;
    if (!cond) continue;
    const last = groups[groups.length - 1];
    if (last && last.condition === cond && last.to === i - 1) last.to = i;
    else groups.push({ condition: cond, from: i, to: i });
  }
  const lanes = Math.min(3, groups.length);
  const left = PAD + (lanes ? 34 + lanes * 22 : 0);
  const widths = nodes.map((n) => Math.max(textWidth(n.label, 13), textWidth(n.marks.join(" · "), 11)) + 28);
  const nodeW = Math.max(140, ...widths);
  const cx = left + nodeW / 2;
  const labelW = Math.max(0, ...groups.map((g) => textWidth(`if ${g.condition}`, FONT)));
  const width = Math.ceil(left + nodeW + PAD + Math.max(labelW + 24, 0));
  const heights = nodes.map((n) => (n.marks.length ? NODE_H + 12 : NODE_H));
  const ys = [];
  let y = PAD;
  for (const nh of heights) {
    ys.push(y);
    y += nh + GAP;
  }
  const height = y - GAP + PAD;
  const summary = "Workflow graph: " + nodes.slice(1, -1).map((n) => n.label + (n.condition ? ` (if ${n.condition})` : "")).join(", then ");
  const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary },
    s("title", {}, summary),
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));

  // Edges first, so nodes paint over their ends.
  const edgeLabels = new Map(groups.map((g) => [g.from, g.condition]));
  for (let i = 0; i < nodes.length - 1; i++) {
    const y1 = ys[i] + heights[i];
    const y2 = ys[i + 1];
    const cond = edgeLabels.get(i + 1);
    const edge = s("g", { class: cond ? "edge conditional" : "edge", "data-condition": cond || null },
      s("line", { x1: cx, y1, x2: cx, y2: y2 - 1, "marker-end": "url(#arrow)" }));
    if (cond) edge.append(s("text", { x: cx + 10, y: (y1 + y2) / 2 + 4, class: "edge-label" }, `if ${cond}`));
    svg.append(edge);
  }
  groups.forEach((g, k) => {
    // "else": from the node before the group, around it, into the node after it.
    const lane = k % Math.max(1, lanes);
    const bx = left - 24 - lane * 22;
    const y1 = ys[g.from - 1] + heights[g.from - 1] / 2;
    const y2 = ys[g.to + 1] + heights[g.to + 1] / 2;
    const edgeOf = (i) => (nodes[i].kind === "start" || nodes[i].kind === "end" ? cx - 45 : left);
    const x0 = edgeOf(g.from - 1);
    const x1 = edgeOf(g.to + 1);
    svg.append(s("g", { class: "edge else", "data-condition": g.condition },
      s("path", { d: `M${x0} ${y1} H${bx + 8} Q${bx} ${y1} ${bx} ${y1 + 8} V${y2 - 8} Q${bx} ${y2} ${bx + 8} ${y2} H${x1 - 1}`, "marker-end": "url(#arrow)" }),
      s("text", { x: bx - 4, y: (y1 + y2) / 2, class: "edge-label else-label", transform: `rotate(-90 ${bx - 4} ${(y1 + y2) / 2})`, "text-anchor": "middle" }, "else")));
  });

  nodes.forEach((n, i) => {
    const x = left;
    const g = s("g", { class: `node kind-${n.kind}`, "data-kind": n.kind, "data-label": n.label });
    const hgt = heights[i];
    if (n.kind === "start" || n.kind === "end") {
      const w = 90;
      g.append(s("rect", { x: cx - w / 2, y: ys[i], width: w, height: hgt, rx: hgt / 2, class: "shape" }));
    } else if (n.kind === "signal") {
      const yy = ys[i];
      const d = 14;
      g.append(s("path", { class: "shape", d: `M${x + d} ${yy} H${x + nodeW - d} L${x + nodeW} ${yy + hgt / 2} L${x + nodeW - d} ${yy + hgt} H${x + d} L${x} ${yy + hgt / 2} Z` }));
    } else {
      g.append(s("rect", { x, y: ys[i], width: nodeW, height: hgt, rx: n.kind === "step" ? 6 : 14, class: "shape" }));
      if (n.kind === "child") g.append(s("rect", { x: x + 4, y: ys[i] + 4, width: nodeW - 8, height: hgt - 8, rx: 4, class: "inner" }));
    }
    g.append(s("text", { x: cx, y: ys[i] + (n.marks.length ? 20 : hgt / 2 + 5), "text-anchor": "middle", class: "node-label" }, n.label));
    if (n.marks.length) g.append(s("text", { x: cx, y: ys[i] + 38, "text-anchor": "middle", class: "node-marks" }, n.marks.join(" · ")));
    if (n.op && n.op.source) g.append(s("title", {}, `${n.label} — ${n.op.source}`));
    if (n.kind === "child" && n.op.workflow) {
      const link = s("a", { href: `#/workflows/${encodeURIComponent(n.op.workflow)}`, "aria-label": `child workflow ${n.op.workflow}` });
      link.append(g);
      svg.append(link);
    } else {
      svg.append(g);
    }
  });
  return svg;
}
