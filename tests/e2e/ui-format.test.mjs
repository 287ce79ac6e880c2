// The window's pure helpers (ui/js/format.js, ui/js/api.js, ui/js/events.js), checked in Node
// without a window: how due times, NHS numbers and audit details read, which form field a backend
// error is pinned to, and which views a change event reaches.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actionLabel,
  compareBeds,
  composeDue,
  describeDetail,
  describeSystmOne,
  dueParts,
  fieldIdFor,
  formatDue,
  formatNhsNumber,
  parseStamp,
  syncTag,
} from "../../ui/js/format.js";
import { ApiError, toApiError } from "../../ui/js/api.js";
import { matchingScopes, scopesOf } from "../../ui/js/events.js";

const NOW = "2026-11-25T10:15:00.123456+00:00";

test("due times read relative to the ward's today, without time-zone conversion", () => {
  assert.equal(formatDue("2026-11-25T14:30:00+00:00", NOW), "Today 14:30");
  assert.equal(formatDue("2026-11-26T09:00:00+00:00", NOW), "Tomorrow 09:00");
  assert.equal(formatDue("2026-11-24T23:59:00+00:00", NOW), "Yesterday 23:59");
  assert.equal(formatDue("2026-12-01T08:00:00-05:00", NOW), "1 Dec 2026 08:00");
  // Month and year boundaries.
  assert.equal(formatDue("2027-01-01T00:30:00+00:00", "2026-12-31T22:00:00+00:00"), "Tomorrow 00:30");
  assert.equal(formatDue(null, NOW), "No due time");
  assert.equal(parseStamp("not a date"), null);
});

test("the edit form round-trips a due time through its date and time boxes", () => {
  const parts = dueParts("2026-03-04T14:05:00+00:00");
  assert.deepEqual(parts, { date: "2026-03-04", time: "14:05" });
  assert.deepEqual(composeDue(parts.date, parts.time), { value: "2026-03-04 14:05" });
  assert.deepEqual(composeDue(" 2026-03-04 ", ""), { value: "2026-03-04" });
  assert.deepEqual(composeDue("", ""), { value: "" });
  assert.equal(composeDue("", "14:00").field, "date", "a time without a date is refused before sending");
  assert.deepEqual(dueParts(null), { date: "", time: "" });
});

test("NHS numbers show as 3-3-4 and anything else as given", () => {
  assert.equal(formatNhsNumber("9434765919"), "943 476 5919");
  assert.equal(formatNhsNumber("943 476 5919"), "943 476 5919");
  assert.equal(formatNhsNumber("12345"), "12345");
  assert.equal(formatNhsNumber(null), "");
});

test("beds sort the way a ward reads them", () => {
  const beds = ["Bed 10", "Bed 2", "Bay 1 Bed 3", "bed 1"];
  assert.deepEqual([...beds].sort(compareBeds), ["Bay 1 Bed 3", "bed 1", "Bed 2", "Bed 10"]);
});

test("audit details read as field: from → to", () => {
  assert.deepEqual(describeDetail({ status: { from: "open", to: "done" } }), ["Status: open → done"]);
  assert.deepEqual(describeDetail({ assignee: { from: null, to: "Dr Baker" } }), ["Assigned to: (none) → Dr Baker"]);
  assert.deepEqual(describeDetail({ title: "Bloods", nhs_number: "9434765919" }), ["Task: Bloods", "NHS number: 943 476 5919"]);
  assert.deepEqual(describeDetail({ due: { from: null, to: "2026-11-25T14:30:00+00:00" } }), ["Due: (none) → 25 Nov 2026 14:30"]);
  assert.deepEqual(describeDetail(null), []);
  assert.equal(actionLabel("task.completed"), "Task completed");
  assert.equal(actionLabel("note.filed_to_systmone"), "Note filed to systmone");
});

test("backend errors are pinned to the input their field maps to, never by reading the message", () => {
  const TASK_FORM = { patient_id: "task-patient", title: "task-title", assignee: "task-assignee", due: "task-due-date" };
  const PATIENT_FORM = { bed: "patient-bed", name: "patient-name", nhs_number: "patient-nhs" };
  const cases = [
    [{ code: "invalid_input", message: "The task title must not be empty", field: "title" }, TASK_FORM, "task-title"],
    [{ code: "invalid_input", message: "The staff name must not be empty", field: "assignee" }, TASK_FORM, "task-assignee"],
    [{ code: "invalid_input", message: "'2026-02-31' is not a date and time this app understands", field: "due" }, TASK_FORM, "task-due-date"],
    [{ code: "not_found", message: "no patient with id 77", field: "patient_id" }, TASK_FORM, "task-patient"],
    [{ code: "invalid_input", message: "The bed must not be empty", field: "bed" }, PATIENT_FORM, "patient-bed"],
    [{ code: "invalid_input", message: "The patient's name contains control characters", field: "name" }, PATIENT_FORM, "patient-name"],
    [{ code: "invalid_nhs_number", message: "an NHS number has 10 digits; this has 9", field: "nhs_number" }, PATIENT_FORM, "patient-nhs"],
    [{ code: "conflict", message: "a patient with NHS number 943 476 5919 is already on the ward list", field: "nhs_number" }, PATIENT_FORM, "patient-nhs"],
    // The message alone pins nothing, even when it names a field.
    [{ code: "invalid_input", message: "The task title must not be empty", field: null }, TASK_FORM, undefined],
    [{ code: "invalid_input", message: "The task title must not be empty" }, TASK_FORM, undefined],
    // A field this form does not have: the summary only.
    [{ code: "invalid_input", message: "The bed must not be empty", field: "bed" }, TASK_FORM, undefined],
    [{ code: "no_current_user", message: "choose who you are in Settings before making changes", field: null }, TASK_FORM, undefined],
    [{ code: "database_locked", message: "the database is busy", field: null }, TASK_FORM, undefined],
    // Inherited object keys are not fields.
    [{ code: "invalid_input", message: "x", field: "toString" }, TASK_FORM, undefined],
  ];
  for (const [error, fields, id] of cases) assert.equal(fieldIdFor(error, fields), id, error.message);
  assert.equal(fieldIdFor(null, TASK_FORM), undefined);
  assert.equal(fieldIdFor({ field: "title" }), undefined, "no table, no field");
});

test("the backend's {code, message, field} becomes an ApiError with its field", () => {
  const e = toApiError({ code: "invalid_input", message: "The bed must not be empty", field: "bed" });
  assert.ok(e instanceof ApiError);
  assert.equal(e.code, "invalid_input");
  assert.equal(e.message, "The bed must not be empty");
  assert.equal(e.field, "bed");
  assert.equal(toApiError({ code: "conflict", message: "task 4 is already done" }).field, null, "no field: null");
  assert.equal(toApiError({ code: "conflict", message: "m", field: null }).field, null);
  const decoding = toApiError("invalid args `input` for command `add_task`");
  assert.equal(decoding.code, "invalid_request");
  assert.equal(decoding.field, null);
  assert.equal(toApiError(e), e, "an ApiError passes through");
});

test("a change event reaches the views that show what changed, and every view on \"all\"", () => {
  assert.deepEqual(scopesOf({ scopes: ["tasks", "audit"] }), ["tasks", "audit"]);
  assert.deepEqual(scopesOf({ scopes: [] }), ["all"], "a payload naming nothing means anything may have changed");
  assert.deepEqual(scopesOf(null), ["all"]);
  const board = new Set(["tasks", "patients", "task_sync"]);
  assert.deepEqual(matchingScopes(board, { scopes: ["tasks", "audit"] }), ["tasks"]);
  assert.deepEqual(matchingScopes(board, { scopes: ["notes", "outbox"] }), []);
  assert.deepEqual(matchingScopes(board, { scopes: ["all"] }), ["tasks", "patients", "task_sync"]);
});

test("the SystmOne link reads in words with a tag colour", () => {
  const connected = describeSystmOne({ state: { kind: "connected", user: { name: "Dr Jane Smith" }, site: "Ward 5" } });
  assert.deepEqual(connected, { label: "Connected", colour: "green", detail: "connected as Dr Jane Smith at Ward 5" });
  assert.equal(describeSystmOne({ state: { kind: "connected", user: null, site: null } }).detail, "connected");
  assert.match(
    describeSystmOne({ state: { kind: "connected", user: null, site: null }, key_source: "environment" }).detail,
    /INPATIENT_HUB_API_KEY, not the keychain/,
    "a key from the environment is said, never silent",
  );
  assert.equal(describeSystmOne({ state: { kind: "blocked", message: "Device blocked by Dr X" } }).detail, "Device blocked by Dr X");
  assert.equal(describeSystmOne({ state: { kind: "awaiting_approval" } }).colour, "orange");
  assert.equal(describeSystmOne({ state: { kind: "not_running" }, problem: "no APIKey is set" }).detail, "no APIKey is set");
  assert.equal(describeSystmOne({ state: { kind: "disabled" } }).label, "Off");
  assert.equal(describeSystmOne(null), null, "a backend without the command shows nothing");
  assert.equal(describeSystmOne({}), null);
});

test("a task's SystmOne link shows as a tag, and a board-only task shows none", () => {
  assert.deepEqual(syncTag({ state: "linked" }), { label: "In SystmOne", colour: "aqua-green" });
  assert.equal(syncTag({ state: "create_pending" }).label, "Sending to SystmOne");
  assert.equal(syncTag({ state: "create_in_flight" }).label, "Sending to SystmOne");
  assert.equal(syncTag({ state: "detached" }).colour, "grey");
  assert.equal(syncTag({ state: "local" }), null);
  assert.equal(syncTag(null), null);
});
