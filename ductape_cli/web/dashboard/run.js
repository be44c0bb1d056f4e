// One run: the step tree of `ductape status`, the timeline, input/output/error,
// the history with type filters, what it waits for, children and lineage, and
// the actions. Redrawn from the API whenever its subscribe stream says something happened.

import { drawActions } from "./actions.js";
import { ApiError, api, subscribe } from "./api.js";
import { GLYPHS, badge, debounce, duration, facts, h, jsonBlock, message, replace, runLink, section, short, timeTag, toDate, toMillis, when, workflowLink } from "./dom.js";
import { definition, eventsOf, listOf, normalizeExecution, showLive } from "./model.js";
import { drawTimeline } from "./timeline.js";

export async function render(main, [runId], _params, stale) {
  const parts = {
    head: h("div"), waiting: h("div"), actions: h("div"), steps: h("div"), timeline: h("div", { class: "scroll-x" }),
    io: h("div", { class: "io" }), history: h("div"), family: h("div"),
  };
  const historyFilter = new Set();
  let lastKey = null;
  let current = null;
  let events = [];

  replace(main,
    parts.head, parts.waiting,
    section("Steps", parts.steps),
    section("Timeline", parts.timeline),
    section("Input, output and error", parts.io),
    section("Actions", parts.actions),
    section("History", parts.history),
    section("Children and lineage", parts.family));

  const load = async () => {
    const [answer, history] = await Promise.all([api.getRun(runId), api.history(runId)]);
    const run = normalizeExecution(answer);
    if (stale()) return;
    current = run;
    events = eventsOf(history);
    drawHead(parts.head, run);
    replace(parts.waiting, waitingNotice(run));
    drawSteps(parts.steps, run);
    drawTimelineInto(parts.timeline, run, events);
    replace(parts.io, ioBlocks(run));
    drawHistory(parts.history, events, historyFilter);
    // The forms are redrawn only when what they offer changes, so typing is never lost.
    const key = `${run.status}|${JSON.stringify(run.waiting || null)}`;
    if (key !== lastKey) {
      lastKey = key;
      let signals = {};
      try {
        const def = await definition(run.workflow_tag, run.version);
        signals = ((def.schema || {}).options || {}).signals || {};
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
      }
      if (stale()) return;
      replace(parts.actions, drawActions(run, signals, () => reload()));
      drawFamily(parts.family, run).catch((err) => replace(parts.family, message(err.message, "error")));
    }
  };
  const reload = debounce(() => load().catch((err) => replace(parts.waiting, message(err.message, "error"))), 120);
  await load();
  const stop = subscribe({ runId, onEvent: reload, onState: showLive });
  // Durations of an unfinished run grow while nothing happens: redraw the timeline each second.
  const tick = setInterval(() => {
    if (current && !["completed", "failed", "rolled_back", "cancelled"].includes(current.status)) {
      drawTimelineInto(parts.timeline, current, events);
    }
  }, 1000);
  const resized = debounce(() => current && drawTimelineInto(parts.timeline, current, events), 150);
  window.addEventListener("resize", resized);
  return () => {
    stop();
    clearInterval(tick);
    window.removeEventListener("resize", resized);
  };
}

function drawTimelineInto(area, run, events) {
  const width = Math.max(640, Math.min(1200, (area.clientWidth || 960) - 4));
  replace(area, drawTimeline(run, events, { width }));
}

/** Redraw the step tree, keeping open the steps the reader opened. */
function drawSteps(area, run) {
  const open = new Set([...area.querySelectorAll("li[data-step] > details[open]")].map((d) => d.parentElement.dataset.step));
  replace(area, stepTree(run));
  for (const li of area.querySelectorAll("li[data-step]")) if (open.has(li.dataset.step)) li.firstChild.open = true;
}

function drawHead(area, run) {
  // A live redraw must not take focus away from the heading the router focused.
  const focused = area.contains(document.activeElement);
  const lineage = [
    ["parent", run.parent_id], ["replay of", run.replayed_from], ["restart of", run.restarted_from], ["resumed from", run.resumed_from],
  ].filter(([, id]) => id);
  replace(area,
    h("h1", { tabindex: "-1" }, h("span", { class: "mono" }, run.workflow_id), " ", badge(run.status)),
    facts([
      ["Workflow", workflowLink(run.workflow_tag)],
      ["Version", run.version ? h("a", { href: `#/workflows/${encodeURIComponent(run.workflow_tag)}?version=${run.version}`, class: "mono" }, run.version.slice(0, 12)) : null],
      ["Env", run.env],
      ["Created", timeTag(run.created_at)],
      ["Ended", run.ended_at ? timeTag(run.ended_at) : null],
      ["Time", isTerminal(run) ? duration(run.execution_time) : run.started_at ? `running for ${duration(Date.now() - toMillis(run.started_at))}` : "queued"],
      ["Current step", !isTerminal(run) ? run.current_step : null],
      ["Failed step", run.failed_step],
      ["Idempotency key", run.idempotency_key],
      ...lineage.map(([what, id]) => [what, runLink(id)]),
    ]));
  if (focused) area.querySelector("h1").focus({ preventScroll: true });
}

const isTerminal = (run) => ["completed", "failed", "rolled_back", "cancelled"].includes(run.status);

function waitingNotice(run) {
  const w = run.waiting;
  if (!w || isTerminal(run)) return null;
  return h("p", { class: "waiting", role: "status", id: "waiting" },
    h("span", { "aria-hidden": "true" }, GLYPHS.waiting + " "), w.detail || w.kind,
    run.cancel_requested ? ` (cancel requested: ${run.cancel_requested})` : "");
}

function stepTree(run) {
  const steps = run.steps || [];
  if (!steps.length) return message("No steps yet.");
  return h("ol", { class: "steps", "aria-label": "Steps in order" }, steps.map((step) => {
    const status = shownStatus(step, run);
    const marks = [];
    if (step.attempts > 1) marks.push(h("span", { class: "mark" }, `${step.attempts} attempts`));
    if (step.has_rollback && !step.rollback_status) marks.push(h("span", { class: "mark", title: "has a rollback handler" }, "↺ rollback"));
    if (step.rollback_status) {
      const ok = step.rollback_status === "completed";
      marks.push(h("span", { class: `mark ${ok ? "compensated" : "bad"}` }, ok ? "↺ compensated" : `↺ compensation ${step.rollback_status}`));
    }
    if (step.critical) marks.push(h("span", { class: "mark" }, "critical"));
    if (step.reason) marks.push(h("span", { class: "mark reason" }, step.reason));
    const summary = h("summary", {},
      h("span", { class: `glyph status-${status}`, "aria-hidden": "true" }, GLYPHS[status] || "?"),
      h("span", { class: "sr" }, status.replace("_", " ") + ": "),
      h("span", { class: `step-name kind-${step.kind || "step"}` }, stepName(step)),
      h("span", { class: "dur" }, step.duration === null || step.duration === undefined ? "" : duration(step.duration)),
      marks);
    const detail = h("div", { class: "step-detail" },
      facts([["status", status], ["started", step.started_at ? timeTag(step.started_at) : null], ["source", step.source], ["options", step.options ? short(step.options, 120) : null]]),
      step.output !== null && step.output !== undefined ? jsonBlock(step.output, `output of ${step.tag}`) : null,
      step.error ? jsonBlock(step.error, `error of ${step.tag}`) : null,
      step.rollback_error ? message(`compensation error: ${step.rollback_error}`, "error") : null);
    return h("li", { "data-step": step.tag, "data-kind": step.kind || "step", "data-status": status }, h("details", {}, summary, detail));
  }));
}

/** A wait or step left open by a run that ended (cancelled, timed out) did not go on waiting. */
function shownStatus(step, run) {
  const status = step.status || "pending";
  if (isTerminal(run) && (status === "waiting" || status === "running")) return run.status === "cancelled" ? "cancelled" : "interrupted";
  return status;
}

function stepName(step) {
  const kind = step.kind || "step";
  const opts = step.options || {};
  if (kind === "step") return step.tag;
  if (kind === "sleep") return `sleep ${duration(opts.duration_ms)}`;
  if (kind === "signal") return `wait for signal ${(opts.signals || [step.tag]).join(" | ")}`;
  if (kind === "checkpoint") return `checkpoint ${step.tag}`;
  if (kind === "child") return `child workflow ${step.tag}`;
  return `${kind} ${step.tag}`;
}

function ioBlocks(run) {
  return [
    h("div", {}, h("h3", {}, "Input"), jsonBlock(run.input, "input")),
    h("div", {}, h("h3", {}, "Output"), jsonBlock(run.output, "output")),
    run.error ? h("div", {}, h("h3", {}, "Error"), jsonBlock(run.error, "error")) : null,
    run.rollback_result ? h("div", {}, h("h3", {}, "Rollback"), jsonBlock(run.rollback_result, "rollback result")) : null,
    run.state && Object.keys(run.state).length ? h("div", {}, h("h3", {}, "State"), jsonBlock(run.state, "state")) : null,
  ];
}

// History type filters group the event names people look for together.
const GROUPS = {
  workflow: (t) => t.startsWith("workflow_") || t === "cancel_requested",
  steps: (t) => t.startsWith("step_") && t !== "step_rolled_back" && t !== "step_rollback_failed",
  waits: (t) => t.startsWith("sleep_") || t.startsWith("signal_") || t.startsWith("hook_") || t.startsWith("child_"),
  rollback: (t) => t.startsWith("rollback_") || t === "step_rolled_back" || t === "step_rollback_failed",
  other: (t) => !["workflow", "steps", "waits", "rollback"].some((g) => GROUPS[g](t)),
};

function drawHistory(area, events, filter) {
  const boxes = h("fieldset", { class: "type-filter" }, h("legend", {}, "Show event types"),
    Object.keys(GROUPS).map((group) => {
      const id = `hist-${group}`;
      const count = events.filter((e) => GROUPS[group](e.type)).length;
      const input = h("input", { type: "checkbox", id, checked: !filter.has(group), onchange: (e) => {
        if (e.target.checked) filter.delete(group);
        else filter.add(group);
        drawHistory(area, events, filter);
        document.getElementById(id).focus();
      } });
      return h("span", { class: "check" }, input, h("label", { for: id }, `${group} (${count})`));
    }));
  const shown = events.filter((e) => !Object.keys(GROUPS).some((g) => filter.has(g) && GROUPS[g](e.type)));
  const start = events.length ? events[0].ts : 0;
  const table = h("table", { class: "history" },
    h("caption", {}, `${shown.length} of ${events.length} events`),
    h("thead", {}, h("tr", {}, ["Time", "+", "Type", "Step", "Data"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, shown.map((e) => h("tr", { "data-type": e.type },
      h("td", {}, clock(e.ts)),
      h("td", { class: "num" }, duration(e.ts - start)),
      h("td", {}, h("code", {}, e.type)),
      h("td", {}, e.step || (e.data && e.data.step) || ""),
      h("td", { class: "mono data" }, e.data && Object.keys(e.data).length ? short(e.data, 140) : "")))));
  replace(area, boxes, table);
}

/** Compare the older run (left) with the newer (right). */
function compareLink(run, other) {
  const [a, b] = (toMillis(other.created_at) ?? 0) <= (toMillis(run.created_at) ?? 0)
    ? [other.workflow_id, run.workflow_id] : [run.workflow_id, other.workflow_id];
  return h("a", { href: `#/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`, class: "compare-link" }, "compare with this run");
}

/** Time of day with milliseconds (the date is in the title): history rows are often ms apart. */
function clock(ts) {
  const d = toDate(ts);
  if (!d) return "–";
  const text = when(ts).slice(11) + "." + String(d.getMilliseconds()).padStart(3, "0");
  return h("time", { datetime: d.toISOString(), title: when(ts) }, text);
}

async function drawFamily(area, run) {
  const children = listOf(run.children || [], "children");
  let related = [];
  try {
    related = listOf(await api.related(run.workflow_id), "executions", "runs");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
  }
  const blocks = [];
  if (children.length) {
    blocks.push(h("h3", {}, "Children"), h("ul", { class: "family" }, children.map((c) => {
      const id = c.workflow_id || c.executionId;
      return h("li", {}, badge(c.status), " ", runLink(id), " ", c.workflow_tag ? workflowLink(c.workflow_tag) : "");
    })));
  }
  const others = related.filter((r) => r.workflow_id !== run.workflow_id);
  if (others.length) {
    blocks.push(h("h3", {}, "Lineage"), h("ul", { class: "family lineage" }, related.map((r) => {
      const me = r.workflow_id === run.workflow_id;
      return h("li", { style: `margin-left: ${(r.depth || 0) * 1.5}em`, "aria-current": me ? "true" : null },
        badge(r.status), " ", me ? h("strong", { class: "mono" }, r.workflow_id + " (this run)") : runLink(r.workflow_id),
        " ", h("span", { class: "dim" }, r.type || ""),
        me ? null : [" ", compareLink(run, r)]);
    })));
  }
  replace(area, blocks.length ? blocks : message("No children, replays, restarts or resumes."));
}
