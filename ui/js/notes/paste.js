// Notes filed by hand: the text on the clipboard to paste into SystmOne's journal, "I have pasted
// this", and the question asked when SystmOne comes back while a paste is unconfirmed (never
// filed twice on a guess).

import { api } from "../api.js";
import { h, byId, visuallyHidden } from "../dom.js";
import { showApiError, clearErrors, notify } from "../errors.js";
import { sentence } from "../format.js";
import { refreshList } from "./list.js";
import { renderPanelStatus } from "./panel.js";
import { notes } from "./state.js";

/** Where the note stands in the outbox, and what only the clinician can answer. */
export function outboxBlock(note, entry) {
  const parts = [h("p", { class: "nhsuk-body", "data-testid": "note-outbox-state", "data-state": entry.state_kind }, sentence(entry.status_text))];
  if (entry.state_kind === "awaiting_paste_confirmation") {
    const text = notes.clipboard?.noteId === note.id ? notes.clipboard.text : null;
    parts.push(
      h("p", { class: "nhsuk-body" }, "The note has been copied to the clipboard. Paste it into SystmOne's journal for this patient, then confirm here: the app then clears it from the clipboard (unless the ward keeps it, or you have copied something else since)."),
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
            on: { click: () => pasteAnswer(note, () => api.confirmPasted(note.id), "Marked as pasted into SystmOne") },
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
                  const copied = await api.copyNoteToClipboard(note.id);
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
              on: { click: () => pasteAnswer(note, () => api.answerPasteQuestion(note.id, true), "Marked as pasted into SystmOne") },
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
              on: { click: () => pasteAnswer(note, () => api.answerPasteQuestion(note.id, false), "Queued for SystmOne") },
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
