// The dashboard's only way to the engine: the public HTTP API of `ductape serve`
// and its subscribe streams. Every path the pages use is written here once.

const TOKEN_KEY = "ductape.token";
const BASE = "/api/workflows";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

const enc = encodeURIComponent;

function query(params) {
  const pairs = Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&") : "";
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "NETWORK", `cannot reach the server: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: { code: "BAD_RESPONSE", message: text.slice(0, 200) } };
    }
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    const detail = typeof err === "string" ? err : err.message || (data && data.detail) || response.statusText;
    throw new ApiError(response.status, err.code || String(response.status), String(typeof detail === "string" ? detail : JSON.stringify(detail)));
  }
  return data;
}

const run = (id) => `${BASE}/runs/${enc(id)}`;

export const api = {
  // runs
  listRuns: (filters) => request("GET", `${BASE}/runs${query(filters)}`),
  getRun: (id) => request("GET", run(id)),
  history: (id, types) => request("GET", `${run(id)}/history${query({ type: types })}`),
  children: (id) => request("GET", `${run(id)}/children`),
  parent: (id) => request("GET", `${run(id)}/parent`),
  related: (id) => request("GET", `${run(id)}/related`),
  compare: (a, b) => request("GET", `${run(a)}/compare/${enc(b)}`),
  // actions
  signal: (id, name, data) => request("POST", `${run(id)}/signals/${enc(name)}`, { data }),
  cancel: (id, reason) => request("DELETE", `${run(id)}${query({ reason })}`),
  replay: (id, body) => request("POST", `${run(id)}/replay`, body),
  restart: (id, body) => request("POST", `${run(id)}/restart`, body),
  resume: (id, body) => request("POST", `${run(id)}/resume`, body),
  // definitions
  workflows: () => request("GET", BASE),
  workflow: (tag, version) => request("GET", `${BASE}/${enc(tag)}${query({ version })}`),
  // schedules
  schedules: () => request("GET", "/api/schedules"),
  pauseSchedule: (id) => request("POST", `/api/schedules/${enc(id)}/pause`),
  resumeSchedule: (id) => request("POST", `/api/schedules/${enc(id)}/resume`),
};

/**
 * Follow a stream of events (Server-Sent Events): one run's, or every run's
 * (`runId` null, optionally one workflow's). Browsers cannot put a header on an
 * EventSource, so the token travels as `?token=`. On a drop the stream is
 * reopened with `since` = the last event seen, so nothing is missed.
 * Returns a function that closes the stream.
 */
export function subscribe({ runId = null, workflow = null, onEvent, onState = () => {} }) {
  let since = null;
  let source = null;
  let closed = false;
  let retry = 500;
  const open = () => {
    if (closed) return;
    const path = runId ? `${run(runId)}/subscribe` : `${BASE}/runs/subscribe`;
    source = new EventSource(path + query({ token: token.get(), workflow, since }));
    source.onopen = () => {
      retry = 500;
      onState("live");
    };
    source.onmessage = (message) => handle(message);
    for (const type of EVENT_TYPES) source.addEventListener(type, (message) => handle(message, type));
    source.onerror = () => {
      onState("reconnecting");
      source.close();
      if (!closed) setTimeout(open, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  const handle = (message, type) => {
    if (message.lastEventId) since = message.lastEventId;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event && typeof event === "object" && !event.type && type) event.type = type;
    if (event && event.id !== undefined && event.id !== null) since = event.id;
    onEvent(event);
  };
  open();
  return () => {
    closed = true;
    if (source) source.close();
  };
}

// Named SSE events the server may send (the seed's vocabulary); plain `message`
// events are handled too.
const EVENT_TYPES = [
  "status_changed", "step_started", "step_completed", "completed", "failed",
  "signal_received", "rolled_back", "cancelled", "event",
];
