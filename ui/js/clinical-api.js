// The backend commands behind patient lookup, case notes and the outbox. Argument names are
// tauri's camelCase forms of the Rust parameters (patient_id → patientId); the structs inside
// (`input`) keep their serde snake_case field names.

import { call } from "./api.js";

export const clinical = {
  board: () => call("board", { filter: {} }),
  addPatient: (input) => call("add_patient", { input }),
  systmoneStatus: () => call("systmone_status"),
  searchPatients: (input) => call("search_patients", { input }),
  reviewLink: (patientId, nhsNumber) => call("review_link", { patientId, nhsNumber }),
  confirmLink: (patientId, nhsNumber) => call("confirm_link", { patientId, nhsNumber }),
  refreshDemographics: (patientId) => call("refresh_demographics", { patientId }),
  followSystmOne: () => call("follow_systmone"),

  listNotes: (patientId) => call("list_notes", { patientId }),
  noteTemplates: () => call("note_templates", { includeRetired: false }),
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

  outbox: (includeFinished) => call("outbox", { includeFinished }),
  fileNoteNow: (id) => call("file_note_now", { id }),
  resolveParkedNote: (id, foundInRecord) => call("resolve_parked_note", { id, foundInRecord }),
};

/** True when SystmOne answers (the last `systmone_status`). */
export function systmOneConnected(status) {
  return status?.state?.kind === "connected";
}
