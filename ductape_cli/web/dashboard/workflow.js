// One workflow: the compiled definition as a graph, its versions and what
// changed between them, and its recent runs.

import { api } from "./api.js";
import { badge, duration, h, message, replace, runLink, section, short, timeTag } from "./dom.js";
import { definition, normalizeRun } from "./model.js";
import { drawGraph } from "./graph.js";
import { diffSchemas } from "./versions.js";

export async function render(main, [tag], params, stale) {
  const version = params.get("version") || undefined;
  const [def, runs] = await Promise.all([definition(tag, version), api.listRuns({ workflow: tag, limit: 10 })]);
  if (stale()) return;
  const schema = def.schema || {};
  const versions = Array.isArray(def.versions) ? def.versions : [];
  const latest = versions[versions.length - 1];
  const options = schema.options || {};
  replace(main,
    h("h1", { tabindex: "-1" }, def.name && def.name !== tag ? `${def.name} ` : "", h("span", { class: "mono" }, tag)),
    h("p", { class: "sub" }, "version ", h("span", { class: "mono" }, (def.version || "").slice(0, 12)),
      def.version !== latest && latest ? [" (not the latest: ", h("a", { href: `#/workflows/${encodeURIComponent(tag)}` }, "show latest"), ")"] : "",
      " · rollback ", options.rollback_strategy || "reverse_all",
      options.timeout_ms ? ` · timeout ${duration(options.timeout_ms)}` : "",
      def.source_path ? [" · ", h("span", { class: "mono" }, def.source_path)] : ""),
    h("div", { class: "wf-grid" },
      section("Graph", h("div", { class: "scroll-x" }, drawGraph(schema)), stepTable(schema)),
      h("div", {},
        section("Versions", h("div", { id: "versions" }, message("Loading versions…"))),
        section("Recent runs", recentRuns(runs, tag)),
        section("Signals and queries", signalsOf(options)))));
  drawVersions(document.getElementById("versions"), tag, versions, def.version, stale).catch((err) =>
    replace(document.getElementById("versions"), message(err.message, "error")));
}

function stepTable(schema) {
  const steps = schema.steps || [];
  if (!steps.length) return message("This workflow has no recorded steps.");
  return h("details", { class: "as-text" }, h("summary", {}, "Steps as a table"),
    h("table", { class: "def-steps" },
      h("caption", {}, `${steps.length} steps in order`),
      h("thead", {}, h("tr", {}, ["Step", "Condition", "Rollback", "Options", "Source"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, steps.map((st) => h("tr", {},
        h("th", { scope: "row" }, st.tag),
        h("td", { class: "mono" }, st.condition || "always"),
        h("td", {}, st.has_rollback ? "↺ yes" : "no"),
        h("td", { class: "mono" }, st.options && Object.keys(st.options).length ? short(st.options, 60) : ""),
        h("td", { class: "mono dim" }, st.source || ""))))));
}

function signalsOf(options) {
  const signals = Object.entries(options.signals || {});
  const queries = options.queries || [];
  if (!signals.length && !queries.length) return message("No declared signals or queries.");
  return h("ul", {},
    signals.map(([name, fields]) => h("li", {}, "signal ", h("code", {}, name), " ", h("span", { class: "mono dim" }, short(fields, 100)))),
    queries.map((q) => h("li", {}, "query ", h("code", {}, typeof q === "string" ? q : q.name))));
}

async function drawVersions(area, tag, versions, shown, stale) {
  if (!versions.length) return replace(area, message("No versions stored."));
  const defs = await Promise.all(versions.map((v) => definition(tag, v)));
  if (stale()) return;
  const items = defs.map((d, i) => {
    const changes = i === 0 ? null : diffSchemas(defs[i - 1].schema || {}, d.schema || {});
    const lines = changes ? changeLines(changes) : ["first version"];
    const me = d.version === shown;
    return h("li", { "data-version": d.version, "aria-current": me ? "true" : null },
      h("a", { href: `#/workflows/${encodeURIComponent(tag)}?version=${d.version}`, class: "mono" }, d.version.slice(0, 12)),
      " ", timeTag(d.created_at), me ? h("strong", {}, " (shown)") : "",
      h("ul", { class: "changes" }, lines.map((l) => h("li", { class: l.startsWith("+") ? "added" : l.startsWith("-") ? "removed" : "" }, l))));
  });
  replace(area, h("ol", { class: "versions", reversed: true }, items.reverse()));
}

function changeLines(c) {
  const lines = [...c.added.map((t) => `+ step ${t}`), ...c.removed.map((t) => `- step ${t}`),
    ...Object.entries(c.changed).map(([t, fields]) => `~ step ${t}: ${fields.join(", ")}`),
    ...c.options.map((o) => `~ option ${o}`), ...c.operations];
  return lines.length ? lines : ["no step changes (source edited)"];
}

function recentRuns(page, tag) {
  const rows = (page.executions || page.runs || []).map(normalizeRun);
  if (!rows.length) return message("No runs yet.");
  return [h("ul", { class: "recent" }, rows.map((r) => h("li", {}, badge(r.status), " ", runLink(r.id), " ", timeTag(r.createdAt)))),
    h("p", {}, h("a", { href: `#/runs?workflow=${encodeURIComponent(tag)}` }, "All runs of this workflow →"))];
}
