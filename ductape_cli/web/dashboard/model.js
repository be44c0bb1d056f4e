// Reading the API's answers: one place that knows the field names (the seed's
// camelCase and the CLI's snake_case both occur) and caches definitions.

import { api } from "./api.js";
import { toMillis } from "./dom.js";

export function normalizeRun(r) {
  return {
    raw: r,
    id: r.workflow_id || r.executionId || r.id,
    tag: r.workflow_tag || r.workflow || r.workflowTag || "",
    status: r.status,
    env: r.env,
    input: r.input,
    metadata: r.metadata,
    createdAt: r.created_at ?? r.createdAt ?? r.started_at ?? r.startedAt,
    executionTime: r.execution_time ?? r.executionTime,
  };
}

export function listOf(value, ...keys) {
  if (Array.isArray(value)) return value;
  for (const key of keys) if (value && Array.isArray(value[key])) return value[key];
  return [];
}

export async function workflowList() {
  return listOf(await api.workflows(), "workflows", "items", "definitions");
}

const definitions = new Map();

/** A stored definition (one version), fetched once per page load. */
export async function definition(tag, version) {
  const key = `${tag}@${version || ""}`;
  if (!definitions.has(key)) definitions.set(key, api.workflow(tag, version || undefined));
  try {
    return await definitions.get(key);
  } catch (err) {
    definitions.delete(key);
    throw err;
  }
}

export function showLive(state) {
  const el = document.getElementById("live");
  if (!el) return;
  el.textContent = { live: "● live", reconnecting: "○ reconnecting…", refused: "✗ live updates refused" }[state] || "";
  el.dataset.state = state;
}

/** Events of a history answer, each with `ts` in ms. */
export function eventsOf(history) {
  return listOf(history, "events").map((e) => ({ ...e, ts: toMillis(e.timestamp ?? e.ts) }));
}

const pick = (obj, ...keys) => {
  for (const key of keys) if (obj[key] !== undefined) return obj[key];
  return undefined;
};

/**
 * A run as the pages read it (the engine's snake_case words), from the API's
 * execution view (the seed's camelCase: executionId, result, errorDetail, ...).
 */
export function normalizeExecution(x) {
  const error = pick(x, "errorDetail") ?? (typeof x.error === "string" ? { message: x.error } : x.error ?? null);
  return {
    workflow_id: pick(x, "workflow_id", "executionId", "id"),
    workflow_tag: pick(x, "workflow_tag", "workflow", "workflowTag"),
    status: x.status,
    input: x.input,
    output: pick(x, "output", "result") ?? null,
    error,
    failed_step: pick(x, "failed_step", "failedStep") ?? null,
    execution_time: pick(x, "execution_time", "executionTime"),
    rollback_result: pick(x, "rollback_result", "rollbackResult") ?? null,
    waiting: x.waiting ?? null,
    metadata: x.metadata ?? null,
    state: x.state ?? null,
    env: x.env,
    version: x.version,
    steps: x.steps || [],
    parent_id: pick(x, "parent_id", "parentId") ?? null,
    replayed_from: pick(x, "replayed_from", "replayedFrom") ?? null,
    restarted_from: pick(x, "restarted_from", "restartedFrom") ?? null,
    resumed_from: pick(x, "resumed_from", "resumedFrom") ?? null,
    idempotency_key: pick(x, "idempotency_key", "idempotencyKey") ?? null,
    current_step: pick(x, "current_step", "currentStep") ?? null,
    cancel_requested: pick(x, "cancel_requested", "cancelRequested") ?? null,
    created_at: pick(x, "created_at", "createdAt"),
    started_at: pick(x, "started_at", "startedAt"),
    ended_at: pick(x, "ended_at", "completedAt", "endedAt") ?? null,
    children: (x.children || []).map((c) => ({
      workflow_id: pick(c, "workflow_id", "executionId"), workflow_tag: pick(c, "workflow_tag", "workflow"), status: c.status,
    })),
  };
}
