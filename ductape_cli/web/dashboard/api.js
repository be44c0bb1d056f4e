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
 * Follow live events over the subscribe WebSocket: one run's (`runId`) or
 * every run of one workflow's (`workflow`). Browsers cannot put a header on a
 * WebSocket, so the token travels as `?token=`. After a drop the socket is
 * reopened with `since` = the last event's cursor, so nothing is missed.
 * Returns a function that closes it.
 */
export function subscribe({ runId = null, workflow = null, onEvent, onState = () => {} }) {
  let since = null;
  let socket = null;
  let closed = false;
  let retry = 500;
  const open = () => {
    if (closed) return;
    const path = runId ? `${run(runId)}/subscribe` : `${BASE}/${enc(workflow)}/subscribe`;
    const url = new URL(path + query({ token: token.get(), since }), location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.onopen = () => {
      retry = 500;
      onState("live");
    };
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "error") {
        // LAGGING says where to pick up again; the socket closes next.
        if (event.error && event.error.since !== undefined) since = event.error.since;
        return;
      }
      if (event.id !== undefined && event.id !== null) since = event.id;
      onEvent(event);
    };
    socket.onclose = (close) => {
      if (closed) return;
      if (close.code === 4401 || close.code === 4404) {
        onState("refused");
        return;
      }
      onState("reconnecting");
      setTimeout(open, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  open();
  return () => {
    closed = true;
    if (socket) socket.close();
  };
}

/** Every run of each of `tags` (the API streams per run or per workflow). */
export function subscribeAll(tags, onEvent, onState) {
  const closers = tags.map((workflow) => subscribe({ workflow, onEvent, onState }));
  return () => closers.forEach((close) => close());
}
