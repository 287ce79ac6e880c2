// The chosen patient's notes, newest first, with their status and where each stands in the outbox.

import { api } from "../api.js";
import { h, byId, replaceChildren, tag } from "../dom.js";
import { showApiError } from "../errors.js";
import { formatDateTime, sentence } from "../format.js";
import { state } from "../state.js";
import { openNote } from "./panel.js";
import { notes } from "./state.js";

const STATUS_TAGS = {
  draft: ["Draft", "blue"],
  awaiting_cosignature: ["Awaiting co-signature", "orange"],
  approved: ["Approved", "yellow"],
  filed: ["Filed", "green"],
};

/** Reads the chosen patient's notes and outbox entries; draws the list unless `redraw` is false. */
export async function refreshList({ redraw = true } = {}) {
  if (!notes.patientId) {
    notes.list = [];
    replaceChildren(byId("notes-list"), h("p", { class: "nhsuk-body" }, "Add a patient to the ward list to write notes."));
    return;
  }
  try {
    // This patient's entries only: never the ward's whole outbox history.
    const [list, outbox] = await Promise.all([api.listNotes(notes.patientId), api.patientOutbox(notes.patientId)]);
    notes.list = list;
    notes.outbox = new Map(outbox.map((e) => [e.note_id, e]));
  } catch (error) {
    if (state.view === "notes") showApiError(error);
    return;
  }
  if (redraw) renderList();
}

export function statusTag(note, testid) {
  const [label, colour] = STATUS_TAGS[note.status] ?? [note.status, "grey"];
  const how = note.status === "filed" && note.filed_how === "manual" ? " (pasted by hand)" : "";
  return tag(label + how, colour, testid);
}

function firstLine(body) {
  const line = String(body ?? "").split("\n").find((l) => l.trim()) ?? "";
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

export function renderList() {
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
  return h("div", { class: "nhsuk-body-s", "data-testid": `note-${note.id}-outbox` }, sentence(entry.status_text));
}
