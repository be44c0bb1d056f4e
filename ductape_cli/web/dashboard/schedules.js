// Schedules: every job `ductape dispatch` created, its next fire times, and pause/resume.

import { act } from "./act.js";
import { api } from "./api.js";
import { h, message, replace, runLink, short, timeTag, workflowLink } from "./dom.js";
import { listOf } from "./model.js";

export async function render(main, _match, _params, stale) {
  const rows = listOf(await api.schedules(), "schedules", "items");
  if (stale()) return;
  const heading = h("h1", { tabindex: "-1" }, "Schedules");
  if (!rows.length) {
    replace(main, heading, message("No schedules. Create one with `ductape dispatch TAG --cron \"0 0 * * *\"`."));
    return;
  }
  replace(main, heading, h("table", { class: "schedules" },
    h("caption", {}, `${rows.length} schedule${rows.length === 1 ? "" : "s"}`),
    h("thead", {}, h("tr", {}, ["Job", "Workflow", "When", "Next fire times", "Fired", "Last run", "State", ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((job) => row(job, main, stale)))));
}

function row(job, main, stale) {
  const id = job.job_id || job.id;
  const when = job.kind === "cron" ? `cron ${job.cron}${job.timezone ? ` (${job.timezone})` : ""}` : `once at ${job.scheduled_at || ""}`;
  const next = job.paused ? [] : job.next_fire_times || (job.scheduled_at ? [job.scheduled_at] : []);
  const paused = Boolean(job.paused);
  const toggle = h("button", { type: "button", "aria-label": `${paused ? "Resume" : "Pause"} schedule ${id}`, onclick: async () => {
    const done = await act(`${paused ? "Resume" : "Pause"} schedule ${id}?`,
      () => (paused ? api.resumeSchedule(id) : api.pauseSchedule(id)),
      () => `schedule ${id} ${paused ? "resumed" : "paused"}`);
    if (done && !stale()) await render(main, [], null, stale);
  } }, paused ? "Resume" : "Pause");
  return h("tr", { "data-schedule": id, "data-paused": String(paused) },
    h("td", { class: "mono" }, id),
    h("td", {}, workflowLink(job.tag), job.input !== undefined ? h("div", { class: "mono dim" }, short(job.input, 40)) : null),
    h("td", {}, when),
    h("td", {}, next.length ? h("ul", { class: "times" }, next.slice(0, 3).map((t) => h("li", {}, timeTag(t)))) : "–"),
    h("td", { class: "num" }, job.fire_count ?? 0),
    h("td", {}, job.last_run_id ? runLink(job.last_run_id) : "–"),
    h("td", {}, h("span", { class: `badge ${paused ? "status-cancelled" : "status-running"}` }, paused ? "⏸ paused" : "▶ active")),
    h("td", {}, toggle));
}
