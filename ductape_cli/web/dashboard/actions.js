// The run page's actions: signal (a form from the declared signal fields),
// cancel with a reason, replay, restart with edited input, resume. Each asks
// before acting and reports what happened.

import { act } from "./act.js";
import { api } from "./api.js";
import { h } from "./dom.js";

const TERMINAL = new Set(["completed", "failed", "rolled_back", "cancelled"]);

export function drawActions(run, declaredSignals, onDone) {
  const id = run.workflow_id;
  const forms = [];
  const waitingFor = (run.waiting && run.waiting.signals) || [];
  if (!TERMINAL.has(run.status)) {
    const names = [...new Set([...waitingFor, ...Object.keys(declaredSignals || {})])];
    forms.push(signalForm(id, names, declaredSignals || {}, waitingFor, onDone));
    forms.push(cancelForm(id, onDone));
  }
  forms.push(replayForm(id));
  forms.push(restartForm(id, run.input));
  if (!TERMINAL.has(run.status) || run.status === "failed") {
    forms.push(resumeForm(run, onDone));
  }
  return h("div", { class: "actions" }, forms);
}

function box(title, id, ...children) {
  return h("form", { class: "action", id, "aria-labelledby": `${id}-title`, novalidate: true },
    h("h3", { id: `${id}-title` }, title), ...children);
}

function field(id, label, control, hint) {
  control.id = id;
  if (hint) control.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", { id: `${id}-hint` }, hint) : null);
}

function onSubmit(form, handler) {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    handler();
  });
  return form;
}

function openRun(result) {
  document.getElementById("notice").dataset.keep = "1";
  location.hash = `#/runs/${encodeURIComponent(result.workflow_id || result.executionId)}`;
}

function newRunLink(result) {
  const id = result && (result.workflow_id || result.executionId);
  return id ? `new run ${id} (${result.status})` : "done";
}

function signalForm(id, names, declared, waitingFor, onDone) {
  const select = h("select", { name: "signal" }, names.map((n) => h("option", { value: n, selected: waitingFor[0] === n }, n)));
  const fieldsBox = h("div", { class: "signal-fields" });
  const drawFields = () => {
    fieldsBox.replaceChildren();
    const spec = declared[select.value];
    if (spec && typeof spec === "object" && Object.keys(spec).length) {
      for (const [name, type] of Object.entries(spec)) {
        const optional = String(type).endsWith("?");
        const base = String(type).replace(/\?$/, "");
        const control = base === "boolean"
          ? h("select", { name, "data-type": base }, h("option", { value: "" }, "—"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"))
          : h("input", { name, "data-type": base, type: base === "number" ? "number" : "text", required: !optional, step: base === "number" ? "any" : null });
        fieldsBox.append(field(`sig-${name}`, `${name}${optional ? "" : " *"}`, control, `${base}${optional ? ", optional" : ""}`));
      }
    } else {
      fieldsBox.append(field("sig-json", "Data (JSON)", h("textarea", { name: "__json", rows: "3", spellcheck: "false" }, "{}")));
    }
  };
  select.addEventListener("change", drawFields);
  drawFields();
  const form = box("Signal", "act-signal",
    field("sig-name", "Signal", select, waitingFor.length ? `the run waits for ${waitingFor.join(" or ")}` : null),
    fieldsBox,
    h("button", { type: "submit" }, "Send signal"));
  return onSubmit(form, async () => {
    let data;
    try {
      data = collect(fieldsBox);
    } catch (err) {
      return report(form, err.message);
    }
    const name = select.value;
    if (!name) return report(form, "choose a signal");
    report(form, "");
    const done = await act(`Send signal "${name}" to ${id}?`, () => api.signal(id, name, data),
      (r) => `signal ${name} delivered${r && r.status ? `; run is ${r.status}` : ""}`);
    if (done) onDone();
  });
}

/** The signal payload: typed fields, or one JSON textarea. Throws a readable error. */
function collect(box) {
  const raw = box.querySelector("[name=__json]");
  if (raw) {
    try {
      return JSON.parse(raw.value || "null");
    } catch (err) {
      throw new Error(`data is not JSON: ${err.message}`);
    }
  }
  const data = {};
  for (const control of box.querySelectorAll("[data-type]")) {
    const value = control.value.trim();
    if (value === "") {
      if (control.required) throw new Error(`${control.name} is required`);
      continue;
    }
    const type = control.dataset.type;
    if (type === "number") data[control.name] = Number(value);
    else if (type === "boolean") data[control.name] = value === "true";
    else if (type === "string") data[control.name] = value;
    else {
      try {
        data[control.name] = JSON.parse(value);
      } catch {
        data[control.name] = value;
      }
    }
  }
  return data;
}

function report(form, text) {
  let out = form.querySelector(".form-error");
  if (!out) {
    out = h("p", { class: "form-error", role: "alert" });
    form.append(out);
  }
  out.textContent = text;
}

function cancelForm(id, onDone) {
  const reason = h("input", { name: "reason", type: "text", value: "cancelled from the dashboard" });
  const form = box("Cancel", "act-cancel", field("cancel-reason", "Reason", reason),
    h("button", { type: "submit", class: "danger" }, "Cancel run"));
  return onSubmit(form, async () => {
    const done = await act(`Cancel ${id}? Its rollback strategy applies.`, () => api.cancel(id, reason.value),
      (r) => {
        const undone = r && (r.rollback_result || r.rollbackResult);
        return `cancelled${undone ? `; compensated: ${(undone.rolled_back_steps || undone.rolledBackSteps || []).join(", ") || "nothing"}` : ""}`;
      });
    if (done) onDone();
  });
}

function replayForm(id) {
  const reason = h("input", { name: "reason", type: "text", value: "" });
  const form = box("Replay", "act-replay", field("replay-reason", "Reason", reason, "a new run with the same input"),
    h("button", { type: "submit" }, "Replay"));
  return onSubmit(form, async () => {
    const body = reason.value ? { reason: reason.value } : {};
    const result = await act(`Replay ${id} as a new run?`, () => api.replay(id, body), (r) => "replayed: " + newRunLink(r));
    if (result) openRun(result);
  });
}

function restartForm(id, input) {
  const text = h("textarea", { name: "input", rows: "5", spellcheck: "false" }, JSON.stringify(input ?? {}, null, 2));
  const reason = h("input", { name: "reason", type: "text", value: "" });
  const form = box("Restart with input", "act-restart",
    field("restart-input", "Input (JSON)", text), field("restart-reason", "Reason", reason),
    h("button", { type: "submit" }, "Restart"));
  return onSubmit(form, async () => {
    let parsed;
    try {
      parsed = JSON.parse(text.value);
    } catch (err) {
      return report(form, `input is not JSON: ${err.message}`);
    }
    report(form, "");
    const body = { input: parsed };
    if (reason.value) body.reason = reason.value;
    const result = await act(`Restart ${id} with this input as a new run?`, () => api.restart(id, body), (r) => "restarted: " + newRunLink(r));
    if (result) openRun(result);
  });
}

function resumeForm(run, onDone) {
  const steps = (run.steps || []).filter((st) => st.kind === "step" && st.started_at);
  const checkpoints = (run.steps || []).filter((st) => st.kind === "checkpoint");
  const from = h("select", { name: "from" },
    h("option", { value: "" }, "where it stopped"),
    steps.map((st) => h("option", { value: `step:${st.tag}` }, `step ${st.tag}`)),
    checkpoints.map((c) => h("option", { value: `checkpoint:${c.tag}` }, `checkpoint ${c.tag}`)));
  const skip = h("input", { name: "skip", type: "text", value: "" });
  const form = box("Resume", "act-resume",
    field("resume-from", "Continue from", from),
    field("resume-skip", "Skip steps", skip, "comma-separated tags, recorded as skipped"),
    h("button", { type: "submit" }, "Resume"));
  return onSubmit(form, async () => {
    const body = {};
    const [kind, tag] = from.value.split(/:(.*)/s);
    if (kind === "step") body.from_step = tag;
    if (kind === "checkpoint") body.from_checkpoint = tag;
    const skipped = skip.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (skipped.length) body.skip = skipped;
    const done = await act(`Resume ${run.workflow_id}${tag ? ` from ${kind} ${tag}` : ""}?`, () => api.resume(run.workflow_id, body),
      (r) => `resumed; run is ${(r && r.status) || "running"}`);
    if (done) onDone();
  });
}
