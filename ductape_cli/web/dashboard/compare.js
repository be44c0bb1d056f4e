// Two runs side by side: the input difference, each step's status, output and
// duration, and the output difference (the answer of `ductape compare A B`).

import { api } from "./api.js";
import { normalizeExecution } from "./model.js";
import { badge, duration, h, jsonBlock, message, replace, runLink, section, short, workflowLink } from "./dom.js";

export async function render(main, [a, b], _params, stale) {
  const [diff, answerA, answerB] = await Promise.all([api.compare(a, b), api.getRun(a), api.getRun(b)]);
  const [runA, runB] = [normalizeExecution(answerA), normalizeExecution(answerB)];
  if (stale()) return;
  const [idA, idB] = diff.workflow_ids || [runA.workflow_id, runB.workflow_id];
  const runs = diff.runs || {};
  const head = (id, run) => h("div", { class: "side" },
    h("p", {}, badge((runs[id] || run).status), " ", runLink(id)),
    h("p", {}, workflowLink(run.workflow_tag), " · ",
      ["completed", "failed", "rolled_back", "cancelled"].includes(run.status) ? duration(run.execution_time) : "not finished"));
  replace(main,
    h("h1", { tabindex: "-1" }, "Compare runs"),
    h("div", { class: "two" }, head(idA, runA), head(idB, runB)),
    section("Input", valueDiff("input", diff.input_diff || {}, idA, idB),
      h("div", { class: "two" }, jsonBlock(runA.input, `input of ${idA}`), jsonBlock(runB.input, `input of ${idB}`))),
    section("Steps", stepsTable(diff, idA, idB), stepOutputs(diff.step_diffs || [], idA, idB)),
    section("Output", valueDiff("output", diff.output_diff || {}, idA, idB),
      h("div", { class: "two" }, jsonBlock(runA.output, `output of ${idA}`), jsonBlock(runB.output, `output of ${idB}`))));
}

function valueDiff(what, changes, idA, idB) {
  const keys = Object.keys(changes);
  if (!keys.length) return message(`The ${what}s are the same.`);
  return h("table", { class: `diff ${what}-diff` },
    h("caption", {}, `${keys.length} ${what} field${keys.length === 1 ? "" : "s"} differ`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col", class: "mono" }, idA), h("th", { scope: "col", class: "mono" }, idB))),
    h("tbody", {}, keys.map((key) => {
      const [left, right] = Array.isArray(changes[key]) ? changes[key] : [changes[key] && changes[key].a, changes[key] && changes[key].b];
      return h("tr", { "data-field": key },
        h("th", { scope: "row", class: "mono" }, key),
        h("td", { class: "mono before" }, show(left)),
        h("td", { class: "mono after" }, show(right)));
    })));
}

const show = (v) => (v === undefined ? "(absent)" : short(v, 120));

function stepsTable(diff, idA, idB) {
  const steps = diff.steps || [];
  if (!steps.length) return message("Neither run has steps.");
  const cell = (info) => info ? [h("td", {}, badge(info.status)), h("td", { class: "num" }, duration(info.duration))]
    : [h("td", { class: "dim" }, "not run"), h("td", {})];
  return h("table", { class: "diff steps-diff" },
    h("caption", {}, `${steps.filter((s) => s.differs).length} of ${steps.length} steps differ`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Step"),
      h("th", { scope: "col", colspan: "2", class: "mono" }, idA), h("th", { scope: "col", colspan: "2", class: "mono" }, idB),
      h("th", { scope: "col" }, "Differs"))),
    h("tbody", {}, steps.map((row) => h("tr", { class: row.differs ? "differs" : null, "data-step": row.step },
      h("th", { scope: "row" }, row.step), cell(row[idA]), cell(row[idB]),
      h("td", {}, row.differs ? "yes" : "no")))));
}

function stepOutputs(diffs, idA, idB) {
  if (!diffs.length) return null;
  return h("div", { class: "step-outputs" }, diffs.map((d) => h("details", { open: diffs.length <= 3 },
    h("summary", {}, `${d.step}: `, (d[idA] || {}).status || "not run", " → ", (d[idB] || {}).status || "not run"),
    h("div", { class: "two" },
      jsonBlock(d[idA] ? { output: d[idA].output, error: d[idA].error } : undefined, `${d.step} in ${idA}`),
      jsonBlock(d[idB] ? { output: d[idB].output, error: d[idB].error } : undefined, `${d.step} in ${idB}`)))));
}
