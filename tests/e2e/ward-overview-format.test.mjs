// What the ward overview says about one patient (ui/js/ward-overview.js `patientGlance`), in
// Node without a window: overdue count and the most overdue task, the next task due, open count.

import { test } from "node:test";
import assert from "node:assert/strict";
import { patientGlance } from "../../ui/js/ward-overview.js";

const task = (id, due, { overdue = false, status = "open" } = {}) => ({ id, title: `Task ${id}`, due, overdue, status });

test("the most overdue task is the one due earliest, and due next is the earliest not overdue", () => {
  const glance = patientGlance([
    task(1, "2026-12-01T10:00:00+00:00", { overdue: true }),
    task(2, "2026-11-30T08:00:00+00:00", { overdue: true }),
    task(3, "2026-12-03T09:00:00+00:00"),
    task(4, "2026-12-02T18:00:00+00:00"),
    task(5, null),
  ]);
  assert.equal(glance.overdue, 2);
  assert.equal(glance.mostOverdue.id, 2);
  assert.equal(glance.dueNext.id, 4);
  assert.equal(glance.open, 5);
});

test("done and cancelled tasks count for nothing; no tasks means nothing overdue or due", () => {
  const glance = patientGlance([
    task(1, "2026-12-01T10:00:00+00:00", { overdue: true, status: "done" }),
    task(2, "2026-12-05T10:00:00+00:00", { status: "cancelled" }),
  ]);
  assert.deepEqual(glance, { open: 0, overdue: 0, mostOverdue: null, dueNext: null });
  assert.deepEqual(patientGlance([]), { open: 0, overdue: 0, mostOverdue: null, dueNext: null });
});
