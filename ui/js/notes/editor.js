// The draft editor: the text saves itself as it is typed (one save at a time, each against the
// version it was loaded at); a draft changed elsewhere meanwhile is never overwritten; typing not
// yet saved is saved before anything redraws the panel from the database.

import { api } from "../api.js";
import { h, byId, replaceChildren } from "../dom.js";
import { showApiError, showErrors, clearErrors, notify } from "../errors.js";
import { formatDateTime } from "../format.js";
import { showPreview } from "./approval.js";
import { refreshList } from "./list.js";
import { openNote, renderPanel } from "./panel.js";
import { notes, openNoteData } from "./state.js";

/** How long typing must pause before the draft is saved. */
const AUTOSAVE_MS = 800;

/** The backend's field names (see `ApiError.field`) → the editor. */
const EDITOR_FIELDS = { text: "note-editor" };

/** The editor, its save state, Preview and Discard, and where the preview goes. */
export function draftParts(note) {
  return [
    h(
      "div",
      { class: "nhsuk-form-group" },
      h("label", { class: "nhsuk-label", for: "note-editor" }, "Draft (saves itself as you type)"),
      h("textarea", {
        class: "nhsuk-textarea app-note-text",
        id: "note-editor",
        rows: "10",
        "data-testid": "note-editor",
        "data-edit-control": "",
        on: { input: edited },
      }),
      h("p", { class: "nhsuk-body-s", id: "note-save-state", "data-testid": "note-save-state", "aria-live": "polite" }, `Saved ${formatDateTime(note.updated_at)}`),
    ),
    h(
      "div",
      { class: "app-button-row" },
      h("button", { class: "nhsuk-button", type: "button", id: "note-preview", "data-testid": "note-preview", "data-edit-control": "", on: { click: showPreview } }, "Preview"),
      h(
        "button",
        { class: "nhsuk-button nhsuk-button--secondary", type: "button", id: "note-discard", "data-testid": "note-discard", "data-edit-control": "", on: { click: discard } },
        "Discard draft",
      ),
    ),
    h("div", { id: "note-preview-area", "data-testid": "note-preview-area" }),
  ];
}

/** Puts the draft's text in the editor (drawn by `draftParts`) and starts tracking its saves. */
export function startEditing(note) {
  notes.editor = { id: note.id, version: note.version, saved: note.body, pending: null, saving: null, conflict: false };
  byId("note-editor").value = note.body;
}

function edited() {
  const ed = notes.editor;
  if (!ed || ed.conflict) return;
  notes.preview = null;
  const area = document.getElementById("note-preview-area");
  if (area) replaceChildren(area); // a preview of older text must not be approvable
  byId("note-save-state").textContent = "Saving…";
  clearTimeout(ed.pending);
  ed.pending = setTimeout(() => save(), AUTOSAVE_MS);
}

/** Saves at once what is waiting for the typing to pause. */
export async function flushAutosave() {
  const ed = notes.editor;
  if (!ed || ed.pending === null) return;
  clearTimeout(ed.pending);
  ed.pending = null;
  await save();
}

async function save() {
  const ed = notes.editor;
  const editor = document.getElementById("note-editor");
  if (!ed || !editor || ed.conflict) return true;
  ed.pending = null;
  const text = editor.value;
  if (text === ed.saved) {
    byId("note-save-state").textContent = `Saved ${clock(new Date())}`;
    return true;
  }
  if (ed.saving) {
    // One save at a time, so versions stay in order; the latest text goes next.
    ed.pending = setTimeout(() => save(), AUTOSAVE_MS);
    return ed.saving;
  }
  ed.saving = (async () => {
    try {
      const saved = await api.saveNote(ed.id, text, ed.version);
      ed.version = saved.version;
      ed.saved = saved.body;
      const idx = notes.list.findIndex((n) => n.id === saved.id);
      if (idx >= 0) notes.list[idx] = saved;
      const label = document.getElementById("note-save-state");
      if (label && notes.editor === ed) label.textContent = `Saved ${clock(new Date())}`;
      return true;
    } catch (error) {
      if (error.code === "conflict") {
        ed.conflict = true;
        showConflict(error);
      } else {
        const label = document.getElementById("note-save-state");
        if (label) label.textContent = "Not saved";
        showApiError(error, EDITOR_FIELDS);
      }
      return false;
    } finally {
      ed.saving = null;
    }
  })();
  return ed.saving;
}

function clock(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Someone else saved this draft: keep what this user typed, never overwrite either copy. */
function showConflict(error) {
  byId("note-save-state").textContent = "Not saved: this draft was changed elsewhere";
  showErrors([{ message: `${error.message}. Your text is still in the box and has not been saved. Copy it, then load the saved version.`, fieldId: "note-editor" }]);
  const area = byId("note-preview-area");
  replaceChildren(
    area,
    h(
      "button",
      {
        class: "nhsuk-button nhsuk-button--secondary",
        type: "button",
        id: "note-load-saved",
        "data-testid": "note-load-saved",
        on: {
          click: async () => {
            const id = notes.openId;
            await refreshList();
            notes.editor = null;
            await openNote(id);
          },
        },
      },
      "Load the saved version",
    ),
  );
}

async function discard() {
  const note = openNoteData();
  if (!note) return;
  clearErrors();
  clearTimeout(notes.editor?.pending);
  notes.editor = null;
  try {
    await api.discardNote(note.id);
  } catch (error) {
    showApiError(error);
    return;
  }
  notes.openId = null;
  await refreshList();
  renderPanel();
  notify(`Draft discarded: ${note.reference}`);
  byId("new-note-text").focus();
}

/** Saves what is typed and waits for it; true when the editor holds exactly the saved text. */
export async function flushAndCheck() {
  await flushAutosave();
  if (notes.editor?.saving) await notes.editor.saving;
  return !notes.editor?.conflict && document.getElementById("note-editor")?.value === notes.editor?.saved;
}
