// What the window currently knows. One object so every view reads the same truth.

export const state = {
  /** The last `app_status` answer. */
  status: null,
  /** True when the database cannot be written: every edit control is disabled. */
  readOnly: false,
  /** Set when a write was refused as read-only, even if the backend reported the database writable at start. */
  readOnlySeen: false,
  /** The last `systmone_status` answer, or null when the backend has none. */
  systmone: null,
  /** The last `board` answer. */
  board: null,
  /** The board's filters as sent to the backend. */
  filter: { patient_id: null, assignee: null, status: "open" },
  /** The task being edited inline: `{id, version, values: {title, assignee, date, time}, original}`. */
  editing: null,
  /** The view on screen: board, handover, audit, settings, lookup, notes or outbox. */
  view: "board",
};

export function currentUser() {
  return state.status?.current_user ?? null;
}
