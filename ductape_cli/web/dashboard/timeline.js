// The run timeline: a Gantt of steps (with each retry), sleeps, waits, child
// runs and compensations on one time axis, drawn as SVG from the run's status
// (the journal's start and end times) and its history (retries, rollbacks).

import { duration, s, textWidth, toMillis } from "./dom.js";

const ROW = 26;
const BAR = 16;
const AXIS = 28;
const MIN_BAR = 3;

/** Rows for the drawing: [{kind, label, status, start, end, segments, open}] with times in ms. */
export function timelineRows(status, events, now = Date.now()) {
  const rows = [];
  const retries = new Map(); // step tag -> [{ts, delay}]
  for (const e of events) {
    if (e.type === "step_retried" && e.step) {
      if (!retries.has(e.step)) retries.set(e.step, []);
      retries.get(e.step).push({ ts: e.ts, delay: (e.data && e.data.delay_ms) || 0, error: e.data && e.data.error });
    }
  }
  const runEnd = toMillis(status.ended_at);
  for (const step of status.steps || []) {
    const start = toMillis(step.started_at);
    if (start === null) continue;
    let end = toMillis(step.ended_at);
    const open = end === null;
    if (open) end = runEnd ?? now;
    const kind = step.kind || "step";
    if (kind === "checkpoint") {
      rows.push({ kind, label: `⚑ ${step.tag}`, status: step.status, start, end: start, instant: true });
      continue;
    }
    // A wait left open by a run that ended (cancelled, say) stopped where the run did.
    const shown = open && runEnd !== null ? (status.status === "cancelled" ? "cancelled" : "interrupted") : step.status;
    const row = { kind, label: labelOf(step), status: shown, start, end, open: open && runEnd === null, segments: [] };
    if (kind === "step") {
      // Each failed attempt is its own segment; the retry delay is the gap after it.
      let from = start;
      for (const r of retries.get(step.tag) || []) {
        row.segments.push({ start: from, end: r.ts, status: "failed", title: `attempt failed: ${(r.error && r.error.message) || ""}` });
        from = r.ts + r.delay;
      }
      row.segments.push({ start: Math.min(from, end), end, status: shown, title: shown });
    } else {
      row.segments.push({ start, end, status: shown, title: shown });
    }
    rows.push(row);
  }
  // Compensations: each rollback handler runs between the previous one's end
  // (or the rollback start) and its own journaled event.
  let cursor = null;
  for (const e of events) {
    if (e.type === "rollback_started") cursor = e.ts;
    if ((e.type === "step_rolled_back" || e.type === "step_rollback_failed") && e.step) {
      const start = cursor ?? e.ts;
      const ok = e.type === "step_rolled_back";
      rows.push({
        kind: "compensation", label: `↺ undo ${e.step}`, status: ok ? "rolled_back" : "failed", start, end: e.ts,
        segments: [{ start, end: e.ts, status: ok ? "rolled_back" : "failed", title: ok ? "compensated" : "compensation failed" }],
      });
      cursor = e.ts;
    }
  }
  return rows;
}

function labelOf(step) {
  const kind = step.kind || "step";
  const opts = step.options || {};
  if (kind === "sleep") return `◷ sleep ${duration(opts.duration_ms)}`;
  if (kind === "signal") return `✉ wait ${step.tag}`;
  if (kind === "hook") return `⚓ hook ${step.tag}`;
  if (kind === "child") return `⎘ child ${step.tag}`;
  if (kind === "step") return step.tag;
  return `${kind} ${step.tag}`;
}

/** The timeline as an <svg> (role=img, with a text summary); `width` in px. */
export function drawTimeline(status, events, { width = 900, now = Date.now() } = {}) {
  const rows = timelineRows(status, events, now);
  const labelWidth = Math.min(260, Math.max(110, ...rows.map((r) => textWidth(r.label) + 16)));
  const begin = Math.min(toMillis(status.started_at) ?? Infinity, toMillis(status.created_at) ?? Infinity, ...rows.map((r) => r.start));
  const finish = Math.max(toMillis(status.ended_at) ?? 0, ...rows.map((r) => r.end), begin + 1);
  const span = Math.max(1, finish - begin);
  const chart = width - labelWidth - 70;
  const x = (t) => labelWidth + ((t - begin) / span) * chart;
  const height = AXIS + rows.length * ROW + 8;
  const summary = rows.length
    ? `Timeline of ${rows.length} rows over ${duration(span)}: ` + rows.map((r) => `${r.label} ${r.status} ${duration(r.end - r.start)}`).join("; ")
    : "No steps have started yet.";
  const svg = s("svg", {
    class: "timeline", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary,
  }, s("title", {}, summary));

  // Axis: five ticks with offsets from the start of the run.
  const axis = s("g", { class: "axis", "aria-hidden": "true" });
  for (let i = 0; i <= 4; i++) {
    const t = begin + (span * i) / 4;
    const tx = x(t);
    axis.append(
      s("line", { x1: tx, x2: tx, y1: AXIS - 6, y2: height - 4, class: "grid" }),
      s("text", { x: tx, y: AXIS - 10, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, "+" + duration(t - begin)));
  }
  svg.append(axis);

  rows.forEach((row, i) => {
    const y = AXIS + i * ROW;
    const g = s("g", { class: `bar kind-${row.kind}`, "data-kind": row.kind, "data-status": row.status, "data-label": row.label });
    g.append(s("text", { x: labelWidth - 8, y: y + ROW / 2 + 4, "text-anchor": "end", class: "label" }, row.label));
    if (row.instant) {
      const cx = x(row.start);
      g.append(s("path", { d: `M${cx} ${y + 4} l6 ${BAR / 2} l-6 ${BAR / 2} l-6 ${-BAR / 2} z`, class: `seg status-${row.status}` },
        s("title", {}, `${row.label} at +${duration(row.start - begin)}`)));
    } else {
      for (const seg of row.segments) {
        const x0 = x(seg.start);
        const w = Math.max(MIN_BAR, x(seg.end) - x0);
        g.append(s("rect", { x: x0, y: y + (ROW - BAR) / 2, width: w, height: BAR, rx: 3, class: `seg status-${seg.status}` },
          s("title", {}, `${row.label}: ${seg.title}, ${duration(seg.end - seg.start)}`)));
      }
      if (row.segments.length > 1) {
        // The retry delays: a thin line joining the attempts.
        const first = row.segments[0];
        const last = row.segments[row.segments.length - 1];
        g.prepend(s("line", { x1: x(first.start), x2: x(last.end), y1: y + ROW / 2, y2: y + ROW / 2, class: "retry-line" }));
      }
      const end = Math.max(x(row.end), x(row.start) + MIN_BAR);
      const tries = row.segments.length > 1 ? ` · ${row.segments.length} attempts` : "";
      g.append(s("text", { x: end + 6, y: y + ROW / 2 + 4, class: "dur" }, (row.open ? "… " : "") + duration(row.end - row.start) + tries));
    }
    svg.append(g);
  });
  return svg;
}
