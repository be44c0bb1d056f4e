// Runs: newest first, filtered by workflow, status and text, paged, and live —
// a run started anywhere on the store appears and changes status without a reload.

import { api, subscribeAll } from "./api.js";
import { badge, debounce, duration, h, message, replace, runLink, short, timeTag, workflowLink } from "./dom.js";
import { normalizeRun, showLive, workflowList } from "./model.js";

const PAGE = 25;
const STATUSES = ["pending", "running", "completed", "failed", "rolled_back", "cancelled"];

export async function render(main, _match, params, stale) {
  const filters = {
    workflow: params.get("workflow") || "",
    status: params.get("status") || "",
    q: params.get("q") || "",
    offset: Math.max(0, Number(params.get("offset")) || 0),
  };
  const workflows = await workflowList();
  const tableArea = h("div", { id: "runs-table" });
  replace(main,
    h("h1", { tabindex: "-1" }, "Runs"),
    filterForm(filters, workflows.map((w) => w.tag)),
    tableArea);

  const load = async () => {
    const page = await api.listRuns({
      workflow: filters.workflow, status: filters.status, search: filters.q, limit: PAGE, offset: filters.offset,
    });
    if (stale()) return;
    drawTable(tableArea, page, filters);
  };
  await load();
  const reload = debounce(() => load().catch((err) => replace(tableArea, message(err.message, "error"))), 150);
  const tags = filters.workflow ? [filters.workflow] : workflows.map((w) => w.tag);
  return subscribeAll(tags, reload, showLive);
}

function filterForm(filters, tags) {
  const workflow = h("select", { id: "f-workflow", name: "workflow" },
    h("option", { value: "" }, "all workflows"),
    tags.map((tag) => h("option", { value: tag, selected: tag === filters.workflow }, tag)));
  const status = h("select", { id: "f-status", name: "status" },
    h("option", { value: "" }, "any status"),
    STATUSES.map((st) => h("option", { value: st, selected: st === filters.status }, st.replace("_", " "))));
  const text = h("input", { id: "f-q", name: "q", type: "search", value: filters.q, placeholder: "run id or input text" });
  return h("form", { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (workflow.value) next.set("workflow", workflow.value);
    if (status.value) next.set("status", status.value);
    if (text.value.trim()) next.set("q", text.value.trim());
    location.hash = "#/runs" + (next.toString() ? "?" + next : "");
  } },
  h("label", { for: "f-workflow" }, "Workflow"), workflow,
  h("label", { for: "f-status" }, "Status"), status,
  h("label", { for: "f-q" }, "Text"), text,
  h("button", { type: "submit" }, "Filter"));
}

function drawTable(area, page, filters) {
  // The server matches the text against run ids, inputs and metadata (`search`).
  const rows = (page.executions || page.runs || page.items || []).map(normalizeRun);
  const count = page.count ?? page.total ?? rows.length;
  if (!rows.length) {
    replace(area, message(filters.offset ? "No more runs." : "No runs match.", "info"), pager(filters, count, 0));
    return;
  }
  // Input (or, without it, the run's metadata) is shown when the API sends it.
  const extra = rows.some((r) => r.input !== undefined) ? "Input" : rows.some((r) => r.metadata && Object.keys(r.metadata).length) ? "Metadata" : null;
  const table = h("table", { class: "runs" },
    h("caption", {}, `Runs ${filters.offset + 1}–${filters.offset + rows.length} of ${count}, newest first`),
    h("thead", {}, h("tr", {},
      ["Status", "Run", "Workflow", extra, "Env", "Created", "Time"].filter(Boolean).map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", { "data-run": r.id, "data-status": r.status },
      h("td", {}, badge(r.status)),
      h("td", {}, runLink(r.id)),
      h("td", {}, workflowLink(r.tag)),
      extra ? h("td", { class: "mono dim" }, short(extra === "Input" ? r.input : r.metadata || "", 48)) : null,
      h("td", {}, r.env || ""),
      h("td", {}, timeTag(r.createdAt)),
      h("td", { class: "num" }, r.status === "pending" || r.status === "running" ? "…" : duration(r.executionTime))))));
  replace(area, table, pager(filters, count, rows.length));
}

function pager(filters, count, shown) {
  const link = (offset, text, rel) => {
    const next = new URLSearchParams();
    if (filters.workflow) next.set("workflow", filters.workflow);
    if (filters.status) next.set("status", filters.status);
    if (filters.q) next.set("q", filters.q);
    if (offset) next.set("offset", String(offset));
    return h("a", { href: "#/runs" + (next.toString() ? "?" + next : ""), rel }, text);
  };
  return h("nav", { class: "pager", "aria-label": "Pages" },
    filters.offset > 0 ? link(Math.max(0, filters.offset - PAGE), "← Newer", "prev") : null,
    filters.offset + shown < count ? link(filters.offset + PAGE, "Older →", "next") : null);
}
