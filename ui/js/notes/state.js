// What the case-notes view knows: the patient chosen, their notes and outbox entries, and the note
// open in the panel. Shared by the files of the view (list, panel, editor, approval, paste,
// compose); nothing outside the view reads it except through `openNotesFor`.

export const notes = {
  patientId: null,
  /** The ward's patients, by bed. */
  patients: [],
  /** Templates offered for new notes (not retired). */
  templates: [],
  /** The chosen patient's notes. */
  list: [],
  /** Their outbox entries, by note id. */
  outbox: new Map(),
  /** The note open in the panel. */
  openId: null,
  /** The open draft's editor: `{id, version, saved, pending, saving, conflict}`. */
  editor: null,
  /** The last preview of the open draft (what approval will freeze). */
  preview: null,
  /** The text last put on the clipboard for pasting: `{noteId, text}`. */
  clipboard: null,
};

/** Opens the notes view on this patient (from the board, lookup, follow or the outbox). */
export function openNotesFor(patientId) {
  notes.patientId = Number(patientId);
  notes.openId = null;
  notes.preview = null;
  notes.clipboard = null;
}

export function currentPatient() {
  return notes.patients.find((p) => p.id === notes.patientId) ?? null;
}

export function openNoteData() {
  return notes.list.find((n) => n.id === notes.openId) ?? null;
}
