// How a ward task's SystmOne link and a patient's task confirmation read on the board.
// Pure (no DOM), so the wording is unit-tested in Node (tests/e2e/tasksync-format.test.mjs).

import { formatDue, parseStamp } from "./format.js";

/** TPP's default task types; the first is what `request_task_push` uses when none is chosen. */
export const TASK_TYPES = ["Clinical Review Required", "Clinical Approval", "File"];

/** After this long without a full check, a patient's tasks may no longer match SystmOne. */
export const STALE_AFTER_MS = 15 * 60 * 1000;

const STATES = {
  local: { label: "Local only", colour: "grey" },
  create_pending: { label: "Waiting to send to SystmOne", colour: "yellow" },
  create_in_flight: { label: "Sending…", colour: "yellow" },
  linked: { label: "In SystmOne", colour: "aqua-green" },
  detached: { label: "Unlinked — review", colour: "orange" },
};

/**
 * The sync state a task row shows: `{state, label, colour}`; `state` is the link's state,
 * "local" for a linked patient's task never sent, or "none" (no tag) for a task whose patient
 * is not linked to SystmOne and that was never involved with it.
 */
export function syncStateView(sync, patientLinked) {
  // A completion SystmOne answered is believed only when a read no longer lists the task.
  if (sync?.state === "linked" && sync.completion_sent_at) {
    return { state: "completion_sent", label: "Completion sent — waiting for SystmOne", colour: "yellow" };
  }
  const known = sync?.state && STATES[sync.state];
  if (known) return { state: sync.state, ...known };
  if (patientLinked) return { state: "local", ...STATES.local };
  return { state: "none", label: null, colour: null };
}

/**
 * Whether the board offers "Create in SystmOne" for this task, and how the button reads.
 * Only open tasks of a patient with an NHS number; a task unlinked after SystmOne completed
 * or removed its copy may be sent again as a new SystmOne task.
 */
export function pushOffer(task, patientLinked) {
  if (!patientLinked || task.status !== "open") return null;
  const state = task.sync?.state ?? "local";
  if (state === "local") return { label: "Create in SystmOne" };
  if (state === "detached") return { label: "Create in SystmOne again" };
  return null;
}

/**
 * A sync notice as separate lines. The backend appends one dated line per event, so a task
 * with several conflicts shows each rule that fired, not just the last.
 */
export function noticeLines(notice) {
  if (typeof notice !== "string") return [];
  return notice.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
}

function ageMs(stamp, now) {
  const at = Date.parse(stamp);
  const reference = Date.parse(now);
  if (Number.isNaN(at) || Number.isNaN(reference)) return null;
  return Math.max(0, reference - at);
}

/** "just now", "4 min ago", "2 h 5 min ago", "3 days ago". */
export function formatAge(ms) {
  if (ms === null || ms === undefined) return "";
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min ago` : `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return days === 1 ? "1 day ago" : `${days} days ago`;
}

/** "today 14:30", "yesterday 09:10", else "24 Nov 2026 14:30": read mid-sentence. */
function when(stamp, now) {
  const text = formatDue(stamp, now);
  if (text === "No due time") return String(stamp);
  return text.replace(/^(Today|Yesterday|Tomorrow)\b/, (word) => word.toLowerCase());
}

/**
 * A patient's line "Tasks last confirmed against SystmOne: …" from their `task_sync` entry
 * (null when the board has none yet). `stale` when never confirmed or more than
 * STALE_AFTER_MS ago: the board may then differ from SystmOne.
 */
export function confirmationView(entry, now) {
  const confirmedAt = entry?.tasks_confirmed_at ?? null;
  const age = confirmedAt ? ageMs(confirmedAt, now) : null;
  const stale = !confirmedAt || age === null || age > STALE_AFTER_MS;
  const confirmed = confirmedAt ? `${when(confirmedAt, now)} (${formatAge(age)})` : "never";
  const todayAt = entry?.today_pulled_at ?? null;
  const today = todayAt && parseStamp(todayAt) ? when(todayAt, now) : null;
  return {
    confirmed,
    confirmedAt,
    stale,
    today,
    checkWanted: Boolean(entry?.full_pull_wanted),
  };
}

/**
 * What the board draws, as one string: the periodic refresh redraws only when it changes,
 * so a row under the pointer is not replaced for nothing. The stale flags are included
 * because they change with time alone.
 */
export function boardSignature(board) {
  if (!board) return "";
  const { now, ...rest } = board;
  const stale = (board.task_sync ?? []).map((p) => confirmationView(p, now));
  return JSON.stringify([rest, stale.map((s) => [s.stale, s.confirmed])]);
}
