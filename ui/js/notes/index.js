// Case notes for one patient: drafts that autosave (editor.js), a preview that is exactly what
// will be filed and approval to SystmOne's outbox or the clipboard (approval.js), paste
// confirmation (paste.js), new notes and corrections (compose.js), the list (list.js) and the
// open note (panel.js). This file chooses the patient and keeps the view current from the
// backend's events. Note text only ever reaches the page as text nodes or input values.

import { api, wardPatients } from "../api.js";
import { h, byId, replaceChildren } from "../dom.js";
import { showApiError, clearErrors } from "../errors.js";
import { formatNhsNumber } from "../format.js";
import { keepCurrent } from "../live.js";
import { renderNewNote, renderTemplateChoice } from "./compose.js";
import { flushAutosave } from "./editor.js";
import { refreshList } from "./list.js";
import { renderPanel, renderPanelStatus } from "./panel.js";
import { currentPatient, notes, openNotesFor } from "./state.js";

export { openNotesFor };

export function initNotes() {
  replaceChildren(
    byId("notes"),
    h(
      "div",
      { class: "nhsuk-form-group" },
      h("label", { class: "nhsuk-label nhsuk-label--s", for: "notes-patient" }, "Patient"),
      h("select", { class: "nhsuk-select", id: "notes-patient", "data-testid": "notes-patient", on: { change: patientChosen } }),
    ),
    h("p", { class: "nhsuk-body-s", id: "notes-patient-meta", "data-testid": "notes-patient-meta" }),
    h("div", { id: "notes-list", "data-testid": "notes-list" }),
    h("div", { id: "note-panel", "data-testid": "note-panel" }),
    h("div", { id: "notes-new", "data-testid": "notes-new" }),
  );
  // Filing progress, other people's notes and patients, the ward's templates. Never redrawn under
  // someone's keyboard focus in the list, the note's status area or a list box; the draft editor
  // itself is never redrawn by a change (what is typed stays, and saves itself).
  keepCurrent({
    view: "notes",
    scopes: ["notes", "outbox", "patients", "templates"],
    redraw: liveRedraw,
    canRedraw: () => {
      const focused = document.activeElement;
      const inside = (id) => Boolean(focused && document.getElementById(id)?.contains(focused));
      return !inside("notes-list") && !inside("note-status-area") && focused?.tagName !== "SELECT";
    },
    container: byId("notes"),
  });
}

export async function loadNotes() {
  // Typing that has not been saved yet is saved before the panel is redrawn from the database.
  await flushAutosave();
  try {
    const [patients, templates] = await Promise.all([wardPatients(), api.noteTemplates(false).catch(() => [])]);
    notes.patients = patients;
    notes.templates = templates;
  } catch (error) {
    showApiError(error);
    return false;
  }
  if (!notes.patients.some((p) => p.id === notes.patientId)) notes.patientId = notes.patients[0]?.id ?? null;
  fillPatients();
  renderNewNote();
  await refreshList();
  renderPanel();
  return true;
}

/** What a change event redraws: the patient and template choices, the list and the note's status. */
async function liveRedraw(scopes) {
  const any = (...names) => scopes.has("all") || names.some((n) => scopes.has(n));
  if (any("patients")) {
    let patients;
    try {
      patients = await wardPatients();
    } catch {
      patients = null; // the next visit shows why
    }
    if (patients && JSON.stringify(patients) !== JSON.stringify(notes.patients)) {
      notes.patients = patients;
      // Patients are never removed: the chosen one is missing only when there was none before.
      // Then the new-note form was switched off, so nothing typed is lost by drawing it again.
      const first = !notes.patients.some((p) => p.id === notes.patientId);
      if (first && notes.patients.length) openNotesFor(notes.patients[0].id);
      fillPatients();
      if (first) {
        renderNewNote();
        renderPanel();
      }
    }
  }
  if (any("templates")) {
    try {
      notes.templates = await api.noteTemplates(false);
      renderTemplateChoice();
    } catch {
      // keep offering the templates already shown
    }
  }
  if (any("notes", "outbox", "patients")) {
    await refreshList();
    renderPanelStatus();
  }
}

function fillPatients() {
  const select = byId("notes-patient");
  replaceChildren(
    select,
    notes.patients.length ? null : h("option", { value: "" }, "No patients on the ward list yet"),
    notes.patients.map((p) => h("option", { value: String(p.id) }, `${p.bed}: ${p.name}`)),
  );
  if (notes.patientId) select.value = String(notes.patientId);
  const p = currentPatient();
  byId("notes-patient-meta").textContent = p
    ? p.nhs_number
      ? `NHS number ${formatNhsNumber(p.nhs_number)}: approved notes are filed in SystmOne.`
      : "Not linked to SystmOne (no NHS number): approved notes must be pasted into SystmOne by hand. Link the patient in Patient lookup."
    : "";
}

async function patientChosen() {
  await flushAutosave();
  clearErrors();
  openNotesFor(byId("notes-patient").value);
  fillPatients();
  await refreshList();
  renderPanel();
}
