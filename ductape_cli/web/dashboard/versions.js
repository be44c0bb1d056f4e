// What changed between two versions of a definition: the same comparison as
// `ductape define` prints (ductape_cli/definitions.py diff_schemas).

const STEP_FIELDS = ["has_rollback", "critical", "allow_fail", "condition", "explicit_condition", "dynamic", "parallel"];

// Key order must not count as a change (Python's json.dumps(sort_keys=True) does the same).
const canon = (v) => JSON.stringify(v ?? null, (_k, val) =>
  val && typeof val === "object" && !Array.isArray(val) ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : val);
const same = (a, b) => canon(a) === canon(b);

export function diffSchemas(old, next) {
  const oldSteps = new Map((old.steps || []).map((st) => [st.tag, st]));
  const newSteps = new Map((next.steps || []).map((st) => [st.tag, st]));
  const changes = { added: [], removed: [], changed: {}, options: [], operations: [] };
  for (const tag of newSteps.keys()) if (!oldSteps.has(tag)) changes.added.push(tag);
  for (const tag of oldSteps.keys()) if (!newSteps.has(tag)) changes.removed.push(tag);
  for (const [tag, after] of newSteps) {
    const before = oldSteps.get(tag);
    if (!before) continue;
    const fields = STEP_FIELDS.filter((f) => !same(before[f], after[f]));
    const a = before.options || {};
    const b = after.options || {};
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) if (!same(a[key], b[key])) fields.push(key);
    if (fields.length) changes.changed[tag] = fields;
  }
  if (old.name !== next.name) changes.options.push("name");
  const oa = old.options || {};
  const ob = next.options || {};
  for (const key of [...new Set([...Object.keys(oa), ...Object.keys(ob)])].sort()) if (!same(oa[key], ob[key])) changes.options.push(key);
  const others = (schema) => new Map((schema.operations || []).filter((op) => op.kind !== "step").map((op) => {
    const { source, ...rest } = op;
    return [canon(rest), op];
  }));
  const before = others(old);
  const after = others(next);
  for (const [key, op] of after) if (!before.has(key)) changes.operations.push(`+ ${op.kind} ${op.name || op.tag || (op.signals || []).join(" | ") || op.workflow || ""}`.trim());
  for (const [key, op] of before) if (!after.has(key)) changes.operations.push(`- ${op.kind} ${op.name || op.tag || (op.signals || []).join(" | ") || op.workflow || ""}`.trim());
  return changes;
}
