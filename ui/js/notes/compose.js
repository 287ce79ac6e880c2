// Starting notes: a new note for the chosen patient (typed, or from one of the ward's templates),
// and a correction of an approved note (a new note naming it; the original never changes).

import { api } from "../api.js";
import { h, byId, replaceChildren } from "../dom.js";
import { showApiError, clearErrors, notify } from "../errors.js";
import { refreshList } from "./list.js";
import { openNote } from "./panel.js";
import { notes } from "./state.js";

/** The backend's field names (`create_note`'s input, see `ApiError.field`) → the new-note form. */
const NEW_NOTE_FIELDS = { text: "new-note-text", template_id: "new-note-template" };
/** … and `create_correction`'s. */
const CORRECTION_FIELDS = { text: "correction-text" };

/** Draws the new-note form (on opening the view or choosing a patient). */
export function renderNewNote() {
  const disabled = !notes.patientId;
  replaceChildren(
    byId("notes-new"),
    h(
      "form",
      { id: "new-note-form", "data-testid": "new-note-form", "data-edit": "", novalidate: true, on: { submit: (e) => (e.preventDefault(), startNote("text")) } },
      h("h2", { class: "nhsuk-heading-m" }, "Write a new note"),
      h(
        "div",
        { class: "nhsuk-form-group" },
        h("label", { class: "nhsuk-label", for: "new-note-text" }, "Note"),
        h("div", { class: "nhsuk-hint", id: "new-note-text-hint" }, "Type the note, or start from a template below. Drafts save themselves as you type."),
        h("textarea", { class: "nhsuk-textarea app-note-text", id: "new-note-text", rows: "5", "aria-describedby": "new-note-text-hint", "data-testid": "new-note-text", disabled }),
      ),
      h("button", { class: "nhsuk-button", type: "submit", id: "new-note-start", "data-testid": "new-note-start", disabled }, "Start note"),
      h("div", { id: "new-note-templates" }, templateChoice(disabled)),
    ),
  );
}

function templateChoice(disabled) {
  if (!notes.templates.length) return null;
  return h(
    "div",
    { class: "nhsuk-form-group app-inline-group" },
    h("label", { class: "nhsuk-label", for: "new-note-template" }, "Or start from a template"),
    h(
      "select",
      { class: "nhsuk-select", id: "new-note-template", "data-testid": "new-note-template", disabled },
      notes.templates.map((t) => h("option", { value: String(t.id) }, t.name)),
    ),
    h(
      "button",
      {
        class: "nhsuk-button nhsuk-button--secondary app-inline-button",
        type: "button",
        id: "new-note-from-template",
        "data-testid": "new-note-from-template",
        disabled,
        on: { click: () => startNote("template") },
      },
      "Start from template",
    ),
  );
}

/**
 * Redraws only the template choice after the ward's templates changed (the note being typed
 * stays), keeping the template chosen when it is still offered.
 */
export function renderTemplateChoice() {
  const container = document.getElementById("new-note-templates");
  if (!container) return;
  const chosen = document.getElementById("new-note-template")?.value;
  const disabled = byId("new-note-text").disabled;
  replaceChildren(container, templateChoice(disabled));
  const select = document.getElementById("new-note-template");
  if (select && chosen && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

async function startNote(kind) {
  clearErrors();
  const input = { patient_id: notes.patientId };
  if (kind === "template") input.template_id = Number(byId("new-note-template").value);
  else input.text = byId("new-note-text").value;
  let note;
  try {
    note = await api.createNote(input);
  } catch (error) {
    showApiError(error, NEW_NOTE_FIELDS);
    return;
  }
  if (kind === "text") byId("new-note-text").value = "";
  notify(`Draft started: ${note.reference}`);
  await refreshList();
  await openNote(note.id);
}

/** Where "Write a correction" goes under an approved or filed note. */
export function correctionArea() {
  return h("div", { id: "note-correction", "data-testid": "note-correction" });
}

export function renderCorrection(note) {
  const area = byId("note-correction");
  if (note.status !== "approved" && note.status !== "filed") {
    replaceChildren(area);
    return;
  }
  replaceChildren(
    area,
    h(
      "details",
      { class: "nhsuk-details" },
      h("summary", { class: "nhsuk-details__summary" }, h("span", { class: "nhsuk-details__summary-text" }, "Write a correction")),
      h(
        "div",
        { class: "nhsuk-details__text" },
        h(
          "div",
          { class: "nhsuk-form-group" },
          h("label", { class: "nhsuk-label", for: "correction-text" }, "What is wrong and what is right"),
          h("div", { class: "nhsuk-hint", id: "correction-hint" }, "A correction is a new note that names this one; this note is never changed."),
          h("textarea", { class: "nhsuk-textarea", id: "correction-text", rows: "4", "aria-describedby": "correction-hint", "data-testid": "correction-text" }),
        ),
        h(
          "button",
          {
            class: "nhsuk-button nhsuk-button--secondary",
            type: "button",
            id: "correction-start",
            "data-testid": "correction-start",
            "data-edit-control": "",
            on: {
              click: async () => {
                clearErrors();
                try {
                  const draft = await api.createCorrection(note.id, byId("correction-text").value);
                  await refreshList();
                  await openNote(draft.id);
                  notify(`Correction started: ${draft.reference}`);
                } catch (error) {
                  showApiError(error, CORRECTION_FIELDS);
                }
              },
            },
          },
          "Start the correction",
        ),
      ),
    ),
  );
}
