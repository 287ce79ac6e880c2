// Case notes for one patient: drafts that autosave, a preview that is exactly what will be
// filed, approval (to SystmOne's outbox or the clipboard), paste confirmation, corrections and
// co-signature. Note text only ever reaches the page as text nodes or input values.

import { clinical, systmOneConnected } from "./clinical-api.js";
import { h, byId, replaceChildren, tag, visuallyHidden } from "./dom.js";
import { showApiError, showErrors, clearErrors, notify } from "./errors.js";
import { compareBeds, formatDateTime, formatNhsNumber } from "./format.js";
import { state } from "./state.js";

const AUTOSAVE_MS = 800;
const REFRESH_MS = 2_000;

const STATUS_TAGS = {
  draft: ["Draft", "blue"],
  awaiting_cosignature: ["Awaiting co-signature", "orange"],
  approved: ["Approved", "yellow"],
  filed: ["Filed", "green"],
};

const notes = {
  patientId: null,
  patients: [],
  templates: [],
  list: [],
  outbox: new Map(),
  /** The note open in the panel: `{id}`; its editor state when it is a draft. */
  openId: null,
  editor: null,
  preview: null,
  clipboard: null,
  timer: null,
};

/** Opens the notes view on this patient (from the board, lookup or follow). */
export function openNotesFor(patientId) {
  notes.patientId = Number(patientId);
  notes.openId = null;
  notes.preview = null;
  notes.clipboard = null;
}

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
  document.addEventListener("visibilitychange", schedule);
}

export async function loadNotes() {
  // Typing that has not been saved yet is saved before the panel is redrawn from the database.
  await flushAutosave();
  try {
    const [board, templates] = await Promise.all([clinical.board(), clinical.noteTemplates().catch(() => [])]);
    notes.patients = [...(board.patients ?? [])].sort((a, b) => compareBeds(a.bed, b.bed) || a.id - b.id);
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
  schedule();
  return true;
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

function currentPatient() {
  return notes.patients.find((p) => p.id === notes.patientId) ?? null;
}

async function patientChosen() {
  await flushAutosave();
  clearErrors();
  openNotesFor(byId("notes-patient").value);
  fillPatients();
  await refreshList();
  renderPanel();
}

/** Refreshes while the view is open and the window visible, to show filing progress. */
function schedule() {
  const wanted = state.view === "notes" && !document.hidden;
  if (wanted && !notes.timer) {
    notes.timer = setInterval(async () => {
      if (state.view !== "notes" || document.hidden) return schedule();
      // Never redraw under someone's keyboard focus (a button in the list or status area).
      const focused = document.activeElement;
      const busy = (id) => focused && document.getElementById(id)?.contains(focused);
      await refreshList({ redraw: !busy("notes-list") });
      if (!busy("note-status-area")) renderPanelStatus();
    }, REFRESH_MS);
  } else if (!wanted && notes.timer) {
    clearInterval(notes.timer);
    notes.timer = null;
  }
}

async function refreshList({ redraw = true } = {}) {
  if (!notes.patientId) {
    notes.list = [];
    replaceChildren(byId("notes-list"), h("p", { class: "nhsuk-body" }, "Add a patient to the ward list to write notes."));
    return;
  }
  try {
    const [list, outbox] = await Promise.all([clinical.listNotes(notes.patientId), clinical.outbox(true)]);
    notes.list = list;
    notes.outbox = new Map(outbox.map((e) => [e.note_id, e]));
  } catch (error) {
    if (state.view === "notes") showApiError(error);
    return;
  }
  if (redraw) renderList();
}

function statusTag(note, testid) {
  const [label, colour] = STATUS_TAGS[note.status] ?? [note.status, "grey"];
  const how = note.status === "filed" && note.filed_how === "manual" ? " (pasted by hand)" : "";
  return tag(label + how, colour, testid);
}

function firstLine(body) {
  const line = String(body ?? "").split("\n").find((l) => l.trim()) ?? "";
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function renderList() {
  const container = byId("notes-list");
  if (!notes.list.length) {
    replaceChildren(container, h("p", { class: "nhsuk-body", "data-testid": "notes-none" }, "No notes for this patient yet."));
    return;
  }
  replaceChildren(
    container,
    h(
      "table",
      { class: "nhsuk-table", "data-testid": "notes-table" },
      h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, "Notes for this patient, newest first"),
      h(
        "thead",
        { class: "nhsuk-table__head" },
        h("tr", { class: "nhsuk-table__row" }, ["Note", "Status", "Written", ""].map((l) => h("th", { class: "nhsuk-table__header", scope: "col" }, l))),
      ),
      h(
        "tbody",
        { class: "nhsuk-table__body" },
        [...notes.list]
          .sort((a, b) => b.id - a.id)
          .map((n) =>
            h(
              "tr",
              { class: `nhsuk-table__row${n.id === notes.openId ? " app-row--open" : ""}`, "data-testid": `note-${n.id}`, "data-status": n.status },
              h("td", { class: "nhsuk-table__cell" }, h("span", { class: "app-note-first-line" }, firstLine(n.body)), h("div", { class: "nhsuk-body-s app-muted" }, n.reference)),
              h("td", { class: "nhsuk-table__cell" }, statusTag(n, `note-${n.id}-status`), outboxLine(n)),
              h("td", { class: "nhsuk-table__cell" }, `${formatDateTime(n.created_at)} by ${n.created_by}`),
              h(
                "td",
                { class: "nhsuk-table__cell" },
                h(
                  "button",
                  {
                    type: "button",
                    class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
                    id: `note-${n.id}-open`,
                    "data-testid": `note-${n.id}-open`,
                    "aria-label": `${n.status === "draft" ? "Edit" : "Open"} note ${n.reference}`,
                    on: { click: () => openNote(n.id) },
                  },
                  n.status === "draft" ? "Edit" : "Open",
                ),
              ),
            ),
          ),
      ),
    ),
  );
}

function outboxLine(note) {
  const entry = notes.outbox.get(note.id);
  if (!entry || note.status === "filed") return null;
  return h("div", { class: "nhsuk-body-s", "data-testid": `note-${note.id}-outbox` }, sentenceCase(entry.status_text));
}

function sentenceCase(s) {
  const t = String(s ?? "");
  return t ? t[0].toUpperCase() + t.slice(1) : t;
}

// ---- New notes ----

function renderNewNote() {
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
      notes.templates.length
        ? h(
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
          )
        : null,
    ),
  );
}

async function startNote(kind) {
  clearErrors();
  const input = { patient_id: notes.patientId };
  if (kind === "template") input.template_id = Number(byId("new-note-template").value);
  else input.text = byId("new-note-text").value;
  let note;
  try {
    note = await clinical.createNote(input);
  } catch (error) {
    showErrors([{ message: error.message, fieldId: kind === "text" ? "new-note-text" : "new-note-template" }]);
    return;
  }
  if (kind === "text") byId("new-note-text").value = "";
  notify(`Draft started: ${note.reference}`);
  await refreshList();
  await openNote(note.id);
}

// ---- The open note ----

async function openNote(id) {
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

function openNoteData() {
  return notes.list.find((n) => n.id === notes.openId) ?? null;
}

function renderPanel() {
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
    notes.editor = { id: note.id, version: note.version, saved: note.body, pending: null, conflict: false };
    parts.push(
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
    );
  } else {
    parts.push(
      h("h3", { class: "nhsuk-heading-s" }, "Text (approved notes cannot be changed)"),
      h("pre", { class: "app-note-readonly", "data-testid": "note-body" }, note.body),
      h("div", { id: "note-correction", "data-testid": "note-correction" }),
    );
  }
  replaceChildren(panel, parts);
  if (note.status === "draft") byId("note-editor").value = note.body;
  else renderCorrection(note);
  renderPanelStatus();
}

/** The part of the panel the 2-second refresh may redraw: never the editor. */
function renderPanelStatus() {
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

function cosignBlock(note) {
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
              const result = await clinical.cosignNote(note.id, null);
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

function outboxBlock(note, entry) {
  const parts = [h("p", { class: "nhsuk-body", "data-testid": "note-outbox-state", "data-state": entry.state_kind }, sentenceCase(entry.status_text))];
  if (entry.state_kind === "awaiting_paste_confirmation") {
    const text = notes.clipboard?.noteId === note.id ? notes.clipboard.text : null;
    parts.push(
      h("p", { class: "nhsuk-body" }, "The note has been copied to the clipboard. Paste it into SystmOne's journal for this patient, then confirm here."),
      text ? h("pre", { class: "app-note-readonly", "data-testid": "note-clipboard-text" }, text) : null,
      h(
        "div",
        { class: "app-button-row" },
        h(
          "button",
          {
            class: "nhsuk-button",
            type: "button",
            id: "note-confirm-pasted",
            "data-testid": "note-confirm-pasted",
            "data-edit-control": "",
            on: { click: () => pasteAnswer(note, () => clinical.confirmPasted(note.id), "Marked as pasted into SystmOne") },
          },
          "I have pasted this into SystmOne",
        ),
        h(
          "button",
          {
            class: "nhsuk-button nhsuk-button--secondary",
            type: "button",
            id: "note-copy-again",
            "data-testid": "note-copy-again",
            on: {
              click: async () => {
                clearErrors();
                try {
                  const copied = await clinical.copyNoteToClipboard(note.id);
                  notes.clipboard = { noteId: note.id, text: copied };
                  renderPanelStatus();
                  notify("Copied to the clipboard again");
                } catch (error) {
                  showApiError(error);
                }
              },
            },
          },
          "Copy again",
        ),
      ),
    );
  } else if (entry.state_kind === "paste_unconfirmed") {
    parts.push(
      h(
        "div",
        { class: "nhsuk-warning-callout", "data-testid": "note-paste-question" },
        h("h3", { class: "nhsuk-warning-callout__label" }, h("span", { role: "text" }, visuallyHidden("Important: "), "Was it pasted?")),
        h("p", {}, "SystmOne can be reached again. Did you paste this note into SystmOne? If not, the app will file it now. It is never filed twice on a guess."),
        h(
          "div",
          { class: "app-button-row" },
          h(
            "button",
            {
              class: "nhsuk-button",
              type: "button",
              id: "note-pasted-yes",
              "data-testid": "note-pasted-yes",
              "data-edit-control": "",
              on: { click: () => pasteAnswer(note, () => clinical.answerPasteQuestion(note.id, true), "Marked as pasted into SystmOne") },
            },
            "Yes, it is in SystmOne",
          ),
          h(
            "button",
            {
              class: "nhsuk-button nhsuk-button--secondary",
              type: "button",
              id: "note-pasted-no",
              "data-testid": "note-pasted-no",
              "data-edit-control": "",
              on: { click: () => pasteAnswer(note, () => clinical.answerPasteQuestion(note.id, false), "Queued for SystmOne") },
            },
            "No, file it in SystmOne",
          ),
        ),
      ),
    );
  } else if (entry.state_kind === "parked") {
    parts.push(h("p", { class: "nhsuk-body" }, h("a", { href: "#outbox", class: "nhsuk-link" }, "Resolve it in the Outbox")));
  }
  return h("div", { class: "app-outbox-block", "data-testid": "note-outbox-block" }, parts);
}

async function pasteAnswer(note, action, done) {
  clearErrors();
  try {
    await action();
  } catch (error) {
    showApiError(error);
    return;
  }
  notes.clipboard = null;
  await refreshList();
  renderPanelStatus();
  notify(`${done}: ${note.reference}`);
  byId("note-panel-title").focus();
}

function renderCorrection(note) {
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
                  const draft = await clinical.createCorrection(note.id, byId("correction-text").value);
                  await refreshList();
                  await openNote(draft.id);
                  notify(`Correction started: ${draft.reference}`);
                } catch (error) {
                  showErrors([{ message: error.message, fieldId: "correction-text" }]);
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

// ---- Autosave ----

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

async function flushAutosave() {
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
      const saved = await clinical.saveNote(ed.id, text, ed.version);
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
        showErrors([{ message: error.message, fieldId: "note-editor" }]);
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
    await clinical.discardNote(note.id);
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

// ---- Preview and approval ----

async function showPreview() {
  clearErrors();
  if (!(await flushAndCheck())) return;
  const note = openNoteData();
  let preview;
  try {
    preview = await clinical.previewNote(note.id);
  } catch (error) {
    showErrors([{ message: error.message, fieldId: "note-editor" }]);
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

async function flushAndCheck() {
  await flushAutosave();
  if (notes.editor?.saving) await notes.editor.saving;
  return !notes.editor?.conflict && document.getElementById("note-editor")?.value === notes.editor?.saved;
}

async function approve(route) {
  clearErrors();
  const preview = notes.preview;
  if (!preview) return;
  for (const b of document.querySelectorAll("#note-preview-area button")) b.disabled = true;
  let result;
  try {
    result = await clinical.approveNote(preview.note_id, preview.text_sha256, route);
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
