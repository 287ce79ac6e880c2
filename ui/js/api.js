// The one door to the Rust backend: the only module that knows the backend's command names and
// the shape of their arguments. Views call `api.*`; none of them names a command.
//
// Argument names are tauri's camelCase forms of the Rust parameters (patient_id → patientId);
// the structs inside (`input`, `filter`) keep their serde snake_case field names.
//
// Every failure becomes an `ApiError {code, message, field}`: `field` is the snake_case name of
// the argument or input field the backend refused (`title`, `nhs_number`, `value`...), or null.
// Views map it to their own inputs (see `fieldIdFor` in format.js); none reads the message to
// guess.

import { compareBeds } from "./format.js";

/** Fired on `window` when a command finds the database read-only. */
export const READ_ONLY_EVENT = "inpatient-hub:read-only";

export class ApiError extends Error {
  constructor(code, message, field = null) {
    super(message);
    this.code = code;
    /** The backend's name for the offending argument or input field, or null. */
    this.field = field;
  }
}

export function toApiError(raw) {
  if (raw instanceof ApiError) return raw;
  if (raw && typeof raw === "object" && typeof raw.message === "string") {
    return new ApiError(
      typeof raw.code === "string" ? raw.code : "error",
      raw.message,
      typeof raw.field === "string" && raw.field ? raw.field : null,
    );
  }
  // Tauri reports argument-decoding failures as plain strings.
  if (typeof raw === "string") return new ApiError("invalid_request", raw);
  return new ApiError("error", "Something went wrong talking to the app's back end: " + String(raw));
}

async function call(command, args = {}) {
  const tauri = globalThis.window?.__TAURI__;
  if (!tauri || !tauri.core) {
    throw new ApiError("no_backend", "This page must be opened inside the Inpatient Hub app.");
  }
  try {
    return await tauri.core.invoke(command, args);
  } catch (raw) {
    const error = toApiError(raw);
    // The database can turn out read-only only when a write is tried: tell the window at once
    // so it disables every edit control, not just the one that failed.
    if (error.code === "database_read_only") window.dispatchEvent(new CustomEvent(READ_ONLY_EVENT));
    throw error;
  }
}

export const api = {
  // ---- The window, the current user and the ward's settings ----
  status: () => call("app_status"),
  setCurrentUser: (name) => call("set_current_user", { name }),
  /** Asks SystmOne afresh who is logged on; answers the acting identity (OS account, SystmOne user, role). */
  recheckIdentity: () => call("recheck_identity"),
  /** `[{setting, label, hint, kind: "flag"|"text", value}]`, in the order Settings shows them. */
  wardSettings: () => call("ward_settings"),
  /** `value` null clears the setting; flags are sent as "true" or "false". */
  setWardSetting: (setting, value) => call("set_ward_setting", { setting, value }),

  // ---- The board: patients and tasks ----
  /** `filter`: `{patient_id, assignee, status}`; `{}` is every patient with the default status. */
  board: (filter = {}) => call("board", { filter }),
  /** The ward's patients alone (no tasks): for views that only list or name them. */
  patients: () => call("ward_patients"),
  handover: () => call("handover"),
  addPatient: (input) => call("add_patient", { input }),
  addTask: (input) => call("add_task", { input }),
  editTask: (id, input) => call("edit_task", { id, input }),
  setTaskStatus: (id, status, version) => call("set_task_status", { id, status, version }),
  audit: (entity, entityId) => call("audit", { entity: entity || null, entityId: entityId || null }),

  // ---- Ward tasks in SystmOne ----
  requestTaskPush: (taskId, taskType) => call("request_task_push", { taskId, taskType }),
  dismissTaskSyncNotice: (taskId) => call("dismiss_task_sync_notice", { taskId }),
  taskSyncView: () => call("task_sync_view"),

  // ---- SystmOne and patient lookup ----
  systmoneStatus: () => call("systmone_status"),
  searchPatients: (input) => call("search_patients", { input }),
  reviewLink: (patientId, nhsNumber) => call("review_link", { patientId, nhsNumber }),
  confirmLink: (patientId, nhsNumber) => call("confirm_link", { patientId, nhsNumber }),
  refreshDemographics: (patientId) => call("refresh_demographics", { patientId }),
  followSystmOne: () => call("follow_systmone"),

  // ---- Case notes ----
  listNotes: (patientId) => call("list_notes", { patientId }),
  createNote: (input) => call("create_note", { input }),
  createCorrection: (original, text) => call("create_correction", { original, text }),
  saveNote: (id, text, version) => call("save_note", { id, text, version }),
  discardNote: (id) => call("discard_note", { id }),
  previewNote: (id) => call("preview_note", { id }),
  /** `route` null/undefined = the backend's default for the current SystmOne state. */
  approveNote: (id, sha256, route) => call("approve_note", route ? { id, sha256, route } : { id, sha256 }),
  cosignNote: (id, route) => call("cosign_note", route ? { id, route } : { id }),
  copyNoteToClipboard: (id) => call("copy_note_to_clipboard", { id }),
  switchNoteToClipboard: (id) => call("switch_note_to_clipboard", { id }),
  confirmPasted: (id) => call("confirm_pasted", { id }),
  answerPasteQuestion: (id, pasted) => call("answer_paste_question", { id, pasted }),

  // ---- The outbox ----
  /** Every entry still to be filed (in draining order, with ETAs); never the filed history. */
  outbox: () => call("outbox", { includeFinished: false }),
  /**
   * One page of filed entries, newest first: `{entries, next_before}`. `before` is the previous
   * page's `next_before` (null for the newest page); `limit` null is the backend's page size.
   */
  outboxHistory: (before = null, limit = null) => call("outbox_history", { before, limit }),
  /** The outbox entries of one patient's notes, filed or not. */
  patientOutbox: (patientId) => call("patient_outbox", { patientId }),
  fileNoteNow: (id) => call("file_note_now", { id }),
  resolveParkedNote: (id, foundInRecord) => call("resolve_parked_note", { id, foundInRecord }),

  // ---- Note templates ----
  noteTemplates: (includeRetired) => call("note_templates", { includeRetired }),
  addNoteTemplate: (name, body) => call("add_note_template", { name, body }),
  updateNoteTemplate: (id, version, name, body) => call("update_note_template", { id, version, name, body }),
  retireNoteTemplate: (id) => call("retire_note_template", { id }),
  restoreNoteTemplate: (id) => call("restore_note_template", { id }),
};

/** The ward's patients sorted by bed, as the board lists them (no tasks are fetched). */
export async function wardPatients() {
  const patients = await api.patients();
  return [...patients].sort((a, b) => compareBeds(a.bed, b.bed) || a.id - b.id);
}

/** True when SystmOne answers (a `systmone_status` answer or `hub:systmone` payload). */
export function systmOneConnected(status) {
  return status?.state?.kind === "connected";
}
