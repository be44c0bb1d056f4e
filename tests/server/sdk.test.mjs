// The JS client against a live `ductape serve`, with Node's built-in test runner.
// Run by tests/server/test_sdk.py: node --experimental-websocket --test sdk.test.mjs
// with DUCTAPE_URL and DUCTAPE_TOKEN set. The module is imported from the server's /sdk.js.
import { test } from "node:test";
import assert from "node:assert/strict";

const url = process.env.DUCTAPE_URL;
const token = process.env.DUCTAPE_TOKEN;
const { Ductape, DuctapeError } = await import(`${url}/sdk.js`).catch(async () => {
  // Node cannot import over http: fetch the module's text and import it as a data: URL.
  const source = await (await fetch(`${url}/sdk.js`)).text();
  return import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
});

async function waitForCompletion(ductape, executionId) {
  // The seed's polling loop, verbatim apart from the shorter wait.
  while (true) {
    const status = await ductape.workflows.getStatus({ executionId });
    if (status.status === "completed") return status.result;
    if (status.status === "failed") throw new Error(status.error);
    if (status.status === "cancelled") throw new Error("Workflow was cancelled");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("execute, getStatus, getHistory and list, as the seed writes them", async () => {
  const ductape = new Ductape({ url, token });
  await ductape.connect();
  const execution = await ductape.workflows.execute({
    workflow: "greet",
    input: { name: "node" },
    options: { timeout: 60000, retries: 3, metadata: { source: "frontend", triggeredBy: "user-action" } },
  });
  assert.match(execution.executionId, /^wf_/);
  assert.equal(execution.status, "pending");
  const result = await waitForCompletion(ductape, execution.executionId);
  assert.deepEqual(result, { hello: "node", n: 3 });
  const history = await ductape.workflows.getHistory({ executionId: execution.executionId });
  const types = history.events.map((event) => event.type);
  assert.equal(types.filter((type) => type === "step_completed").length, 3);
  for (const event of history.events) assert.ok(event.timestamp && event.type && event.data);
  const listed = await ductape.workflows.list({ workflow: "greet", status: "completed", limit: 20, offset: 0 });
  assert.ok(listed.count >= 1);
  const mine = listed.executions.find((exec) => exec.executionId === execution.executionId);
  assert.deepEqual(mine.metadata, { source: "frontend", triggeredBy: "user-action" });
});

test("subscribe pushes status_changed, step_completed and completed in order", async () => {
  const ductape = new Ductape({ url, token });
  await ductape.connect();
  const execution = await ductape.workflows.execute({ workflow: "greet", input: { name: "live" } });
  const seen = [];
  let subscription;
  const finished = new Promise((resolve, reject) => {
    subscription = ductape.workflows.subscribe({
      executionId: execution.executionId,
      onChange: (event) => {
        if (event.type === "status_changed") seen.push(`status:${event.data.status}`);
        if (event.type === "step_completed") seen.push(`step:${event.data.step}`);
        if (event.type === "completed") {
          seen.push("completed");
          resolve(event.data.result);
        }
        if (event.type === "failed") reject(new Error(event.data.error.message));
      },
      onError: reject,
    });
  });
  const result = await finished;
  subscription.unsubscribe();
  assert.deepEqual(result, { hello: "live", n: 3 });
  assert.deepEqual(seen, ["status:pending", "status:running", "step:first", "step:second", "step:third", "status:completed", "completed"]);
});

test("signal and cancel an approval run (the seed's ApprovalWorkflow)", async () => {
  const ductape = new Ductape({ url, token });
  await ductape.connect();
  const approved = await ductape.workflows.execute({ workflow: "approval", input: { requestId: "req-123" } });
  const outcome = new Promise((resolve, reject) => {
    const subscription = ductape.workflows.subscribe({
      executionId: approved.executionId,
      onChange: async (event) => {
        if (event.type === "signal_waiting") {
          await ductape.workflows.signal({ executionId: approved.executionId, signal: "approve", data: { by: "user-456" } });
        }
        if (event.type === "completed") {
          subscription.unsubscribe();
          resolve(event.data.result);
        }
      },
      onError: reject,
    });
  });
  assert.deepEqual(await outcome, { approved_by: "user-456" });

  const doomed = await ductape.workflows.execute({ workflow: "approval", input: {} });
  const cancelled = new Promise((resolve, reject) => {
    const subscription = ductape.workflows.subscribe({
      executionId: doomed.executionId,
      onChange: async (event) => {
        if (event.type === "signal_waiting") {
          await ductape.workflows.cancel({ executionId: doomed.executionId, reason: "User cancelled the operation" });
        }
        if (event.type === "status_changed" && event.data.status === "cancelled") {
          subscription.unsubscribe();
          resolve(event.data.status);
        }
      },
      onError: reject,
    });
  });
  assert.equal(await cancelled, "cancelled");
  await assert.rejects(waitForCompletion(ductape, doomed.executionId), /cancelled/);
});

test("subscribe to every run of a workflow", async () => {
  const ductape = new Ductape({ url, token });
  await ductape.connect();
  const completed = new Set();
  let subscription;
  let ids = [];
  const allDone = new Promise((resolve, reject) => {
    subscription = ductape.workflows.subscribe({
      workflow: "greet",
      onOpen: async () => {
        if (ids.length) return;
        ids = (await Promise.all([1, 2, 3].map((i) => ductape.workflows.execute({ workflow: "greet", input: { name: `n${i}` } })))).map((e) => e.executionId);
      },
      onChange: (event) => {
        if (event.type === "completed") completed.add(event.executionId);
        if (ids.length && ids.every((id) => completed.has(id))) resolve();
      },
      onError: reject,
    });
  });
  await allDone;
  subscription.unsubscribe();
  assert.equal(ids.length, 3);
});

test("errors are DuctapeErrors with the server's code", async () => {
  const ductape = new Ductape({ url, token });
  await assert.rejects(ductape.workflows.getStatus({ executionId: "wf_missing" }), (error) => {
    assert.ok(error instanceof DuctapeError);
    assert.equal(error.code, "RUN_NOT_FOUND");
    assert.equal(error.status, 404);
    return true;
  });
  await assert.rejects(ductape.workflows.execute({ workflow: "nope" }), { code: "WORKFLOW_NOT_FOUND" });
  const stranger = new Ductape({ url, token: "not-the-token-at-all" });
  await assert.rejects(stranger.connect(), { code: "UNAUTHORIZED", status: 401 });
  const refused = await new Promise((resolve) => {
    stranger.workflows.subscribe({ workflow: "greet", onChange: () => {}, onError: resolve });
  });
  assert.equal(refused.code, "UNAUTHORIZED");
});
