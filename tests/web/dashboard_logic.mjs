// Runs the dashboard's pure functions under Node for tests/test_dashboard_logic.py:
// reads {timeline: [[status, events], ...], diff: [[old, new], ...]} on stdin, prints the answers as JSON.
import { readFileSync } from "node:fs";
import { timelineRows } from "../../ductape_cli/web/dashboard/timeline.js";
import { diffSchemas } from "../../ductape_cli/web/dashboard/versions.js";
import { graphNodes } from "../../ductape_cli/web/dashboard/graph.js";
import { normalizeExecution } from "../../ductape_cli/web/dashboard/model.js";

const input = JSON.parse(readFileSync(0, "utf8"));
const out = {
  timeline: (input.timeline || []).map(([execution, events]) => {
    const run = normalizeExecution(execution);
    const withTs = events.map((e) => ({ ...e, ts: e.timestamp }));
    return timelineRows(run, withTs, 0).map(({ kind, label, status, segments }) => ({
      kind, label, status, segments: (segments || []).map((s) => s.status),
    }));
  }),
  diff: (input.diff || []).map(([a, b]) => diffSchemas(a, b)),
  graph: (input.graph || []).map((schema) => graphNodes(schema).map(({ kind, label, marks, condition }) => ({ kind, label, marks, condition }))),
};
process.stdout.write(JSON.stringify(out));
