// The note open in the panel: its status (redrawn as the outbox moves it on), then the draft
// editor (editor.js) or the frozen text with "Write a correction" (compose.js).

import { h, byId, replaceChildren } from "../dom.js";
import { clearErrors } from "../errors.js";
import { formatDateTime } from "../format.js";
import { cosignBlock } from "./approval.js";
import { correctionArea, renderCorrection } from "./compose.js";
import { draftParts, flushAutosave, startEditing } from "./editor.js";
import { renderList, statusTag } from "./list.js";
import { outboxBlock } from "./paste.js";
import { notes, openNoteData } from "./state.js";

export async function openNote(id) {
  await flushAutosave();
  clearErrors();
  notes.openId = id;
  notes.preview = null;
  notes.clipboard = null;
  notes.editor = null;
  renderList();
  renderPanel();
  const focus = document.getElementById("note-editor") ?? document.getElementById("note-panel-title");
  focus?.focus();
}

/** Draws the whole panel for the open note (the editor too: only on opening a note). */
export function renderPanel() {
  const panel = byId("note-panel");
  const note = openNoteData();
  if (!note) {
    replaceChildren(panel);
    return;
  }
  const parts = [
    h("h2", { class: "nhsuk-heading-m", id: "note-panel-title", tabindex: "-1" }, `Note ${note.reference}`),
    h("div", { id: "note-status-area", "data-testid": "note-status-area" }),
  ];
  if (note.status === "draft") {
    parts.push(draftParts(note));
  } else {
    parts.push(
      h("h3", { class: "nhsuk-heading-s" }, "Text (approved notes cannot be changed)"),
      h("pre", { class: "app-note-readonly", "data-testid": "note-body" }, note.body),
      correctionArea(),
    );
  }
  replaceChildren(panel, parts);
  if (note.status === "draft") startEditing(note);
  else renderCorrection(note);
  renderPanelStatus();
}

/** The part of the panel redrawn when the note or its outbox entry changes: never the editor. */
export function renderPanelStatus() {
  const area = document.getElementById("note-status-area");
  const note = openNoteData();
  if (!area || !note) return;
  const entry = notes.outbox.get(note.id);
  const parts = [h("p", { class: "nhsuk-body" }, "Status: ", statusTag(note, "note-status"))];
  if (note.approved_by) parts.push(h("p", { class: "nhsuk-body-s", "data-testid": "note-approved" }, `Approved by ${note.approved_by} at ${formatDateTime(note.approved_at)}.`));
  if (note.cosigned_by) parts.push(h("p", { class: "nhsuk-body-s" }, `Co-signed by ${note.cosigned_by} at ${formatDateTime(note.cosigned_at)}.`));
  if (note.filed_at) parts.push(h("p", { class: "nhsuk-body-s", "data-testid": "note-filed" }, `Filed in SystmOne at ${formatDateTime(note.filed_at)}${note.filed_how === "manual" ? " (pasted by a clinician)" : ""}.`));
  if (note.status === "awaiting_cosignature") parts.push(cosignBlock(note));
  if (entry && note.status !== "filed") parts.push(outboxBlock(note, entry));
  replaceChildren(area, parts);
}
