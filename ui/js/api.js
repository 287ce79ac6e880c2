// The one door to the Rust backend. Every failure becomes `{code, message}` so views
// can show the backend's own words.

/** Fired on `window` when a command finds the database read-only. */
export const READ_ONLY_EVENT = "inpatient-hub:read-only";

export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export function toApiError(raw) {
  if (raw instanceof ApiError) return raw;
  if (raw && typeof raw === "object" && typeof raw.message === "string") {
    return new ApiError(typeof raw.code === "string" ? raw.code : "error", raw.message);
  }
  // Tauri reports argument-decoding failures as plain strings.
  if (typeof raw === "string") return new ApiError("invalid_request", raw);
  return new ApiError("error", "Something went wrong talking to the app's back end: " + String(raw));
}

export async function call(command, args = {}) {
  const tauri = window.__TAURI__;
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
  status: () => call("app_status"),
  setCurrentUser: (name) => call("set_current_user", { name }),
  board: (filter) => call("board", { filter }),
  handover: () => call("handover"),
  addPatient: (input) => call("add_patient", { input }),
  addTask: (input) => call("add_task", { input }),
  editTask: (id, input) => call("edit_task", { id, input }),
  setTaskStatus: (id, status, version) => call("set_task_status", { id, status, version }),
  systmoneStatus: () => call("systmone_status"),
  dismissTaskSyncNotice: (taskId) => call("dismiss_task_sync_notice", { taskId }),
  audit: (entity, entityId) => call("audit", { entity: entity || null, entityId: entityId || null }),
};
