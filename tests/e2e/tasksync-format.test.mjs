// The board's SystmOne task-sync wording (ui/js/tasksync.js), checked in Node without a window.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  STALE_AFTER_MS,
  TASK_TYPES,
  boardSignature,
  confirmationView,
  formatAge,
  noticeLines,
  pushOffer,
  syncStateView,
} from "../../ui/js/tasksync.js";

const NOW = "2026-11-25T10:15:00.123456+00:00";

test("every link state has its own words, and a linked patient's unsent task reads Local only", () => {
  const labels = Object.fromEntries(
    ["local", "create_pending", "create_in_flight", "linked", "detached"].map((s) => [s, syncStateView({ state: s }, true).label]),
  );
  assert.deepEqual(labels, {
    local: "Local only",
    create_pending: "Waiting to send to SystmOne",
    create_in_flight: "Sending…",
    linked: "In SystmOne",
    detached: "Unlinked — review",
  });
  assert.deepEqual(syncStateView(null, true), { state: "local", label: "Local only", colour: "grey" });
  // A patient without an NHS number: nothing to say about SystmOne.
  assert.deepEqual(syncStateView(null, false), { state: "none", label: null, colour: null });
  // An imported task stays "In SystmOne" even if the patient's NHS number was removed since.
  assert.equal(syncStateView({ state: "linked" }, false).label, "In SystmOne");
  assert.equal(syncStateView({ state: "something_new" }, true).state, "local");
  // A completion sent but not yet seen in a SystmOne read is not shown as done there.
  assert.deepEqual(syncStateView({ state: "linked", completion_sent_at: NOW }, true), {
    state: "completion_sent",
    label: "Completion sent — waiting for SystmOne",
    colour: "yellow",
  });
});

test("Create in SystmOne is offered only for open, unsent tasks of linked patients", () => {
  const open = (sync) => ({ status: "open", sync });
  assert.equal(pushOffer(open(null), true).label, "Create in SystmOne");
  assert.equal(pushOffer(open({ state: "local" }), true).label, "Create in SystmOne");
  assert.equal(pushOffer(open({ state: "detached" }), true).label, "Create in SystmOne again");
  for (const state of ["create_pending", "create_in_flight", "linked"]) assert.equal(pushOffer(open({ state }), true), null, state);
  assert.equal(pushOffer(open(null), false), null, "patient without an NHS number");
  assert.equal(pushOffer({ status: "done", sync: null }, true), null);
  assert.equal(pushOffer({ status: "cancelled", sync: { state: "local" } }, true), null);
  assert.equal(TASK_TYPES[0], "Clinical Review Required", "the backend's default comes first");
});

test("each dated notice line is shown on its own, blank lines dropped", () => {
  assert.deepEqual(noticeLines("2026-11-25 10:00: first\n\n2026-11-25 10:05: second\r\n"), [
    "2026-11-25 10:00: first",
    "2026-11-25 10:05: second",
  ]);
  assert.deepEqual(noticeLines(null), []);
  assert.deepEqual(noticeLines(""), []);
});

test("the confirmation time reads mid-sentence and is stale after 15 minutes or when never confirmed", () => {
  const fresh = confirmationView(
    { tasks_confirmed_at: "2026-11-25T10:11:00+00:00", today_pulled_at: "2026-11-25T10:14:30+00:00", full_pull_wanted: false },
    NOW,
  );
  assert.deepEqual(fresh, {
    confirmed: "today 10:11 (4 min ago)",
    confirmedAt: "2026-11-25T10:11:00+00:00",
    stale: false,
    today: "today 10:14",
    checkWanted: false,
  });
  const old = confirmationView({ tasks_confirmed_at: "2026-11-24T22:00:00+00:00", full_pull_wanted: true }, NOW);
  assert.equal(old.confirmed, "yesterday 22:00 (12 h 15 min ago)");
  assert.equal(old.stale, true);
  assert.equal(old.today, null);
  assert.equal(old.checkWanted, true);
  const never = confirmationView({ tasks_confirmed_at: null, today_pulled_at: null }, NOW);
  assert.equal(never.confirmed, "never");
  assert.equal(never.stale, true);
  assert.equal(confirmationView(undefined, NOW).confirmed, "never");
  // The boundary: exactly 15 minutes is still current; a moment more is not.
  const at = (ms) => new Date(Date.parse(NOW) - ms).toISOString();
  assert.equal(confirmationView({ tasks_confirmed_at: at(STALE_AFTER_MS) }, NOW).stale, false);
  assert.equal(confirmationView({ tasks_confirmed_at: at(STALE_AFTER_MS + 1000) }, NOW).stale, true);
  // Offsets are honoured when measuring age (both stamps carry one).
  assert.equal(confirmationView({ tasks_confirmed_at: "2026-11-25T11:14:00+01:00" }, NOW).confirmed, "today 11:14 (1 min ago)");
});

test("ages read in minutes, hours and days", () => {
  assert.equal(formatAge(59_000), "just now");
  assert.equal(formatAge(60_000), "1 min ago");
  assert.equal(formatAge(3_600_000), "1 h ago");
  assert.equal(formatAge(36 * 3_600_000), "1 day ago");
  assert.equal(formatAge(72 * 3_600_000), "3 days ago");
  assert.equal(formatAge(null), "");
});

test("the board signature ignores the clock but not sync changes or staleness", () => {
  const board = (now, state, confirmed) => ({
    now,
    patients: [{ id: 1 }],
    tasks: [{ id: 7, status: "open", sync: { state } }],
    task_sync: [{ patient_id: 1, tasks_confirmed_at: confirmed }],
  });
  const a = boardSignature(board(NOW, "create_pending", "2026-11-25T10:14:40+00:00"));
  assert.equal(a, boardSignature(board("2026-11-25T10:15:04+00:00", "create_pending", "2026-11-25T10:14:40+00:00")));
  assert.notEqual(a, boardSignature(board(NOW, "linked", "2026-11-25T10:14:40+00:00")));
  assert.notEqual(
    boardSignature(board("2026-11-25T10:27:50+00:00", "linked", "2026-11-25T10:13:00+00:00")),
    boardSignature(board("2026-11-25T10:28:10+00:00", "linked", "2026-11-25T10:13:00+00:00")),
    "crossing 15 minutes redraws the stale mark",
  );
});
