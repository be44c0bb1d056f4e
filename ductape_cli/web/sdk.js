// ductape's JavaScript client: a dependency-free ES module served by `ductape serve` at /sdk.js.
//
//   import { Ductape } from "http://127.0.0.1:8737/sdk.js";
//   const ductape = new Ductape({ url: "http://127.0.0.1:8737", token: "<token>" });
//   await ductape.connect();
//   const { executionId } = await ductape.workflows.execute({ workflow: "process-order", input: { orderId: "o-1" } });
//   const sub = ductape.workflows.subscribe({ executionId, onChange: (event) => console.log(event.type, event.data) });
//   sub.unsubscribe();
//
// Works in browsers and in Node 20+ (`node --experimental-websocket` before Node 22).

/** An API error: `code` (e.g. RUN_NOT_FOUND), `status` (HTTP status) and the server's message. */
export class DuctapeError extends Error {
  constructor(code, message, status, details) {
    super(message);
    this.name = "DuctapeError";
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

const FATAL_CLOSE = new Set([4400, 4401, 4404, 4409, 4429]);

export class Ductape {
  /** @param {{url?: string, token?: string, fetch?: Function, WebSocket?: Function}} options */
  constructor({ url, token, fetch: fetchImpl, WebSocket: socketImpl } = {}) {
    const base = url || (typeof location !== "undefined" ? location.origin : "http://127.0.0.1:8737");
    this.url = base.replace(/\/+$/, "");
    this.token = token || null;
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);
    this._WebSocket = socketImpl || globalThis.WebSocket;
    this.connected = false;
    this.workflows = new Workflows(this);
  }

  /** Check the server is there and the token works; subscriptions need WebSocket support. */
  async connect() {
    if (!this._WebSocket) {
      throw new DuctapeError("NO_WEBSOCKET", "this runtime has no WebSocket (Node 20: run with --experimental-websocket)", 0);
    }
    await this.request("GET", "/api/workflows");
    this.connected = true;
    return this;
  }

  /** One API call; resolves to the parsed JSON body, rejects with a DuctapeError. */
  async request(method, path, body, query) {
    const target = new URL(this.url + path);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null) target.searchParams.set(key, String(value));
    }
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await this._fetch(target, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new DuctapeError(error.code || "HTTP_ERROR", error.message || `${response.status} ${response.statusText}`, response.status, error.details);
    }
    return data;
  }

  /** The WebSocket URL of a subscribe endpoint, with the token as ?token= (browsers cannot set headers). */
  socketUrl(path, since) {
    const target = new URL(this.url + path);
    target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
    if (this.token) target.searchParams.set("token", this.token);
    if (since !== undefined && since !== null) target.searchParams.set("since", String(since));
    return target.toString();
  }
}

class Workflows {
  constructor(client) {
    this._client = client;
  }

  /** Start a run; resolves to {executionId, status} at once (a worker executes it). */
  execute({ workflow, input, options } = {}) {
    return this._client.request("POST", "/api/workflows/runs", { workflow, input, options: options || {} });
  }

  /** A run's status, result and error (the message; `errorDetail` has step and code). */
  getStatus({ executionId }) {
    return this._client.request("GET", `/api/workflows/runs/${enc(executionId)}`);
  }

  /** {events: [{timestamp, type, data}]} in time order. */
  getHistory({ executionId }) {
    return this._client.request("GET", `/api/workflows/runs/${enc(executionId)}/history`);
  }

  signal({ executionId, signal, data }) {
    return this._client.request("POST", `/api/workflows/runs/${enc(executionId)}/signals/${enc(signal)}`, { data });
  }

  cancel({ executionId, reason }) {
    return this._client.request("DELETE", `/api/workflows/runs/${enc(executionId)}`, undefined, { reason });
  }

  /** {count, executions}: filter by workflow and status, page with limit and offset. */
  list({ workflow, status, limit, offset } = {}) {
    return this._client.request("GET", "/api/workflows/runs", undefined, { workflow, status, limit, offset });
  }

  /** Change metadata, and/or send {signal: {name, data}}, and/or {cancel: {reason}}. */
  update({ executionId, ...changes }) {
    return this._client.request("PATCH", `/api/workflows/runs/${enc(executionId)}`, changes);
  }

  replay({ executionId, ...options }) {
    return this._client.request("POST", `/api/workflows/runs/${enc(executionId)}/replay`, options);
  }

  restart({ executionId, ...options }) {
    return this._client.request("POST", `/api/workflows/runs/${enc(executionId)}/restart`, options);
  }

  resume({ executionId, ...options }) {
    return this._client.request("POST", `/api/workflows/runs/${enc(executionId)}/resume`, options);
  }

  getChildren({ executionId }) {
    return this._client.request("GET", `/api/workflows/runs/${enc(executionId)}/children`);
  }

  getParent({ executionId }) {
    return this._client.request("GET", `/api/workflows/runs/${enc(executionId)}/parent`);
  }

  emitEvent({ executionId, type, payload }) {
    return this._client.request("POST", "/api/workflows/events", { executionId, type, payload });
  }

  getEvents({ executionId, type }) {
    return this._client.request("GET", `/api/workflows/runs/${enc(executionId)}/events`, undefined, { type });
  }

  /** Defined workflows, or one definition with {workflow: tag}. */
  definitions({ workflow } = {}) {
    return this._client.request("GET", workflow ? `/api/workflows/${enc(workflow)}` : "/api/workflows");
  }

  /**
   * Live events of one run ({executionId}) or of every run of a workflow ({workflow}), pushed
   * over a WebSocket: onChange({id, executionId, workflow, type, timestamp, data}). A dropped
   * connection reconnects by itself from the last event seen, so nothing is missed. A run's
   * stream starts at its beginning unless `since` says otherwise; a workflow's starts now.
   */
  subscribe({ executionId, workflow, since, onChange, onError, onOpen }) {
    if (!executionId === !workflow) throw new DuctapeError("INVALID_INPUT", "subscribe needs executionId or workflow", 0);
    const client = this._client;
    const path = executionId ? `/api/workflows/runs/${enc(executionId)}/subscribe` : `/api/workflows/${enc(workflow)}/subscribe`;
    let cursor = since === undefined ? (executionId ? 0 : null) : since;
    let socket = null;
    let closed = false;
    let delay = 250;
    let timer = null;
    const fail = (error) => {
      closed = true;
      if (onError) onError(error);
    };
    const open = () => {
      if (closed) return;
      socket = new client._WebSocket(client.socketUrl(path, cursor));
      socket.onopen = () => {
        delay = 250;
        if (onOpen) onOpen();
      };
      socket.onmessage = (message) => {
        let event;
        try {
          event = JSON.parse(typeof message.data === "string" ? message.data : String(message.data));
        } catch {
          return;
        }
        if (event.type === "error" && event.error) {
          if (event.error.code === "LAGGING") cursor = event.error.since;
          else fail(new DuctapeError(event.error.code, event.error.message, 0));
          return;
        }
        cursor = event.id;
        if (onChange) onChange(event);
      };
      socket.onclose = (close) => {
        socket = null;
        if (closed) return;
        if (FATAL_CLOSE.has(close.code)) {
          fail(new DuctapeError(close.reason || "CLOSED", `subscription refused (${close.code})`, close.code - 4000));
          return;
        }
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 5000);
      };
      socket.onerror = () => {};
    };
    open();
    return {
      unsubscribe() {
        closed = true;
        if (timer) clearTimeout(timer);
        if (socket) socket.close(1000);
      },
      get cursor() {
        return cursor;
      },
    };
  }
}

function enc(value) {
  if (value === undefined || value === null || value === "") throw new DuctapeError("INVALID_INPUT", "a required id is missing", 0);
  return encodeURIComponent(String(value));
}

export default Ductape;
