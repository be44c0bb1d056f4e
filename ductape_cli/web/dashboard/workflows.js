// Workflows: every stored definition with its latest version and run counts.

import { badge, h, message, replace, timeTag, workflowLink } from "./dom.js";
import { workflowList } from "./model.js";

export async function render(main, _match, _params, stale) {
  const rows = await workflowList();
  if (stale()) return;
  if (!rows.length) {
    replace(main, h("h1", { tabindex: "-1" }, "Workflows"), message("No workflows are defined in this store yet: run `ductape define`."));
    return;
  }
  replace(main, h("h1", { tabindex: "-1" }, "Workflows"),
    h("table", { class: "workflows" },
      h("caption", {}, `${rows.length} workflow${rows.length === 1 ? "" : "s"}`),
      h("thead", {}, h("tr", {}, ["Workflow", "Name", "Latest version", "Versions", "Steps", "Defined", "Runs"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((w) => h("tr", { "data-workflow": w.tag },
        h("td", {}, workflowLink(w.tag)),
        h("td", {}, w.name || ""),
        h("td", { class: "mono" }, (w.version || "").slice(0, 12)),
        h("td", { class: "num" }, typeof w.versions === "number" ? w.versions : (w.versions || []).length),
        h("td", { class: "num" }, w.steps ?? ""),
        h("td", {}, timeTag(w.defined_at)),
        h("td", {}, runCounts(w)))))));
}

function runCounts(w) {
  const counts = w.runs && typeof w.runs === "object" ? Object.entries(w.runs).filter(([, n]) => n) : [];
  if (!counts.length) return "";
  return h("span", { class: "counts" }, counts.map(([status, n]) =>
    h("a", { href: `#/runs?workflow=${encodeURIComponent(w.tag)}&status=${status}` }, badge(status), ` ${n}`)));
}
