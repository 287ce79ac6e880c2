// Preview and approval: the preview is exactly what will be filed; approving freezes that text
// (checked by its SHA-256) and sends it to SystmOne's outbox or the clipboard; co-signature for
// notes that need one.

import { api, systmOneConnected } from "../api.js";
import { h, byId, replaceChildren } from "../dom.js";
import { showApiError, clearErrors, notify } from "../errors.js";
import { state } from "../state.js";
import { flushAndCheck } from "./editor.js";
import { refreshList } from "./list.js";
import { renderPanel } from "./panel.js";
import { currentPatient, notes, openNoteData } from "./state.js";

/** The backend's field names (see `ApiError.field`) → the editor. */
const EDITOR_FIELDS = { text: "note-editor" };

export async function showPreview() {
  clearErrors();
  if (!(await flushAndCheck())) return;
  const note = openNoteData();
  let preview;
  try {
    preview = await api.previewNote(note.id);
  } catch (error) {
    showApiError(error, EDITOR_FIELDS);
    return;
  }
  notes.preview = preview;
  const connected = systmOneConnected(state.systmone);
  const linked = Boolean(currentPatient()?.nhs_number);
  const approveButton = (id, label, route, secondary) =>
    h(
      "button",
      {
        class: `nhsuk-button${secondary ? " nhsuk-button--secondary" : ""}`,
        type: "button",
        id,
        "data-testid": id,
        "data-edit-control": "",
        on: { click: () => approve(route) },
      },
      label,
    );
  const choices = [];
  if (connected && linked) {
    choices.push(approveButton("note-approve", "Approve and file in SystmOne", null, false));
  } else {
    choices.push(
      h(
        "p",
        { class: "nhsuk-body", "data-testid": "note-route-hint" },
        linked
          ? "SystmOne is not available right now. Queue the note to be filed when it is, or copy it to paste into SystmOne yourself."
          : "This patient is not linked to SystmOne, so the note can only be copied and pasted into SystmOne by hand.",
      ),
    );
    if (linked) choices.push(approveButton("note-approve-queue", "Approve: queue for SystmOne", "api", false));
    choices.push(approveButton("note-approve-clipboard", "Approve: copy to clipboard", "clipboard", linked));
  }
  replaceChildren(
    byId("note-preview-area"),
    h("h3", { class: "nhsuk-heading-s", id: "note-preview-title", tabindex: "-1" }, "Preview: exactly what will be filed in SystmOne"),
    h(
      "ol",
      { class: "app-preview", "data-testid": "note-preview-lines", "aria-labelledby": "note-preview-title" },
      preview.lines.map((line, i) => h("li", { class: "app-preview__line", "data-testid": `note-preview-line-${i}` }, line)),
    ),
    h("p", { class: "nhsuk-body-s" }, `${preview.lines.length} line${preview.lines.length === 1 ? "" : "s"}, reference ${preview.reference}. Approving freezes the note.`),
    h("div", { class: "app-button-row" }, choices),
  );
  byId("note-preview-title").focus();
}

async function approve(route) {
  clearErrors();
  const preview = notes.preview;
  if (!preview) return;
  for (const b of document.querySelectorAll("#note-preview-area button")) b.disabled = true;
  let result;
  try {
    result = await api.approveNote(preview.note_id, preview.text_sha256, route);
  } catch (error) {
    for (const b of document.querySelectorAll("#note-preview-area button")) b.disabled = false;
    showApiError(error);
    return;
  }
  await afterApproval(result);
}

async function afterApproval(result) {
  notes.preview = null;
  notes.editor = null;
  if (result.clipboard_text) notes.clipboard = { noteId: result.note.id, text: result.clipboard_text };
  await refreshList();
  renderPanel();
  const how = result.clipboard_text
    ? "copied to the clipboard: paste it into SystmOne, then confirm"
    : result.note.status === "awaiting_cosignature"
      ? "waiting for co-signature"
      : "queued for SystmOne";
  notify(`Note approved, ${how}: ${result.note.reference}`);
  byId("note-panel-title").focus();
}

/** "Co-sign", for a note waiting for a registered clinician's co-signature. */
export function cosignBlock(note) {
  return h(
    "div",
    { class: "nhsuk-inset-text", "data-testid": "note-cosign-block" },
    h("p", {}, "This note needs a registered clinician's co-signature before it is filed."),
    h(
      "button",
      {
        class: "nhsuk-button nhsuk-button--small",
        type: "button",
        id: "note-cosign",
        "data-testid": "note-cosign",
        "data-edit-control": "",
        on: {
          click: async () => {
            clearErrors();
            try {
              const result = await api.cosignNote(note.id, null);
              await afterApproval(result);
            } catch (error) {
              showApiError(error);
            }
          },
        },
      },
      "Co-sign",
    ),
  );
}
