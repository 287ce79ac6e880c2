// Pure formatting and parsing helpers (no DOM), shared by the views and unit-tested in Node.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const STAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?/;

/**
 * Splits a backend timestamp (RFC 3339 in the ward's local time) into its wall-clock
 * parts without converting time zones: the backend already chose the ward's local time.
 */
export function parseStamp(stamp) {
  const m = typeof stamp === "string" ? STAMP.exec(stamp) : null;
  if (!m) return null;
  return {
    date: `${m[1]}-${m[2]}-${m[3]}`,
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    time: `${m[4]}:${m[5]}`,
    seconds: m[6] ?? "00",
  };
}

function dayNumber(p) {
  return Date.UTC(p.year, p.month - 1, p.day) / 86_400_000;
}

/** "25 Nov 2026" */
export function formatDate(stamp) {
  const p = parseStamp(stamp);
  if (!p) return "";
  return `${p.day} ${MONTHS[p.month - 1]} ${p.year}`;
}

/** "25 Nov 2026 14:30" */
export function formatDateTime(stamp) {
  const p = parseStamp(stamp);
  if (!p) return "";
  return `${formatDate(stamp)} ${p.time}`;
}

/** A due time relative to `now`: "Today 14:30", "Tomorrow 09:00", "Yesterday 18:00", else the date. */
export function formatDue(due, now) {
  const d = parseStamp(due);
  if (!d) return "No due time";
  const n = parseStamp(now);
  if (n) {
    const diff = dayNumber(d) - dayNumber(n);
    if (diff === 0) return `Today ${d.time}`;
    if (diff === 1) return `Tomorrow ${d.time}`;
    if (diff === -1) return `Yesterday ${d.time}`;
  }
  return formatDateTime(due);
}

/** The due time as the edit form shows it: `{date: "YYYY-MM-DD", time: "HH:MM"}` or empty strings. */
export function dueParts(due) {
  const p = parseStamp(due);
  return p ? { date: p.date, time: p.time } : { date: "", time: "" };
}

/**
 * Builds the backend's due string from the form's date and time boxes.
 * Returns `{value}` (empty string = no due time) or `{error, field}` when only a time was given.
 */
export function composeDue(date, time) {
  const d = (date ?? "").trim();
  const t = (time ?? "").trim();
  if (!d && !t) return { value: "" };
  if (!d) return { error: "Enter the due date as well as the time (for example 2026-11-25)", field: "date" };
  return { value: t ? `${d} ${t}` : d };
}

/** "485 777 3456" (the NHS's 3-3-4 display); anything unexpected is shown as given. */
export function formatNhsNumber(digits) {
  const s = String(digits ?? "").replace(/\s+/g, "");
  return /^\d{10}$/.test(s) ? `${s.slice(0, 3)} ${s.slice(3, 6)} ${s.slice(6)}` : String(digits ?? "");
}

/** Sorts beds the way a ward reads them: "Bed 2" before "Bed 10". */
export function compareBeds(a, b) {
  return String(a).localeCompare(String(b), "en-GB", { numeric: true, sensitivity: "base" });
}

const ACTIONS = {
  "task.added": "Task added",
  "task.edited": "Task edited",
  "task.reassigned": "Task reassigned",
  "task.completed": "Task completed",
  "task.cancelled": "Task cancelled",
  "task.reopened": "Task reopened",
  "patient.added": "Patient added",
  "setting.changed": "Setting changed",
};

/** A readable label for an audit action ("task.completed" → "Task completed"). */
export function actionLabel(action) {
  if (ACTIONS[action]) return ACTIONS[action];
  const words = String(action).replace(/[._]/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : "";
}

const FIELD_LABELS = {
  patient_id: "Patient",
  title: "Task",
  assignee: "Assigned to",
  due: "Due",
  status: "Status",
  bed: "Bed",
  name: "Name",
  nhs_number: "NHS number",
  value: "Value",
};

function showValue(key, value) {
  if (value === null || value === undefined || value === "") return "(none)";
  if (key === "nhs_number") return formatNhsNumber(value);
  if (typeof value === "string" && STAMP.test(value) && value.length > 16) return formatDateTime(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/**
 * Turns an audit entry's detail JSON into readable lines: `{field: {from, to}}` becomes
 * "Status: open → done"; plain values become "Task: Bloods".
 */
export function describeDetail(detail) {
  if (detail === null || detail === undefined) return [];
  if (typeof detail !== "object" || Array.isArray(detail)) return [String(JSON.stringify(detail))];
  return Object.entries(detail).map(([key, value]) => {
    const label = FIELD_LABELS[key] ?? key.replace(/_/g, " ");
    if (value && typeof value === "object" && !Array.isArray(value) && ("from" in value || "to" in value)) {
      return `${label}: ${showValue(key, value.from)} → ${showValue(key, value.to)}`;
    }
    return `${label}: ${showValue(key, value)}`;
  });
}

/**
 * The input a backend error belongs beside. The backend names the argument or input field it
 * refused in `error.field` (snake_case: `title`, `nhs_number`, `value`...); each form maps those
 * names to its own input ids in `fields`. Undefined when the error names no field, or one the
 * form does not have (the message then shows in the error summary only).
 */
export function fieldIdFor(error, fields = {}) {
  const field = error?.field;
  if (typeof field !== "string" || !field) return undefined;
  return Object.hasOwn(fields, field) ? fields[field] : undefined;
}

/** Capitalises the first letter so backend messages read as sentences in the summary. */
export function sentence(message) {
  const s = String(message ?? "").trim();
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/**
 * The SystmOne link in a few words and a tag colour, from `systmone_status`
 * (`{state: {kind, ...}, problem, demo_mode, ...}`). Returns null when there is nothing to show.
 */
export function describeSystmOne(status) {
  if (!status || typeof status !== "object") return null;
  const state = status.state ?? {};
  switch (state.kind) {
    case "connected": {
      const who = state.user?.name ? ` as ${state.user.name}` : "";
      const where = state.site ? ` at ${state.site}` : "";
      // Where the APIKey came from, when it is not this PC's keychain: never a silent fallback.
      const key =
        status.key_source === "environment"
          ? " (APIKey from INPATIENT_HUB_API_KEY, not the keychain)"
          : status.key_source === "demo_default"
            ? " (the simulator's demo APIKey)"
            : "";
      return { label: "Connected", colour: "green", detail: `connected${who}${where}${key}` };
    }
    case "awaiting_approval":
      return { label: "Waiting for approval", colour: "orange", detail: "approve this device in SystmOne" };
    case "blocked":
      return { label: "Blocked", colour: "red", detail: state.message || "unblock this device in SystmOne's Device Manager" };
    case "disabled":
      return { label: "Off", colour: "grey", detail: "switched off in Settings" };
    case "not_running":
      return { label: "Not connected", colour: "grey", detail: status.problem || "SystmOne is not running, or nobody is logged in" };
    default:
      return status.problem ? { label: "Not connected", colour: "grey", detail: status.problem } : null;
  }
}

/** How a task's SystmOne link shows on the board, or null for a task that lives on the ward board only. */
export function syncTag(sync) {
  switch (sync?.state) {
    case "linked":
      return { label: "In SystmOne", colour: "aqua-green" };
    case "create_pending":
    case "create_in_flight":
      return { label: "Sending to SystmOne", colour: "yellow" };
    case "detached":
      return { label: "Closed in SystmOne", colour: "grey" };
    default:
      return null;
  }
}
