// The outbox: approved notes on their way into SystmOne, what each is waiting for, and the
// decisions only a person can make (parked entries). Redrawn whenever the backend says the
// outbox, the notes or the patients changed (the background filing included).

import { api, wardPatients } from "./api.js";
import { h, byId, replaceChildren, tag } from "./dom.js";
import { showApiError, clearErrors, notify } from "./errors.js";
import { formatDateTime } from "./format.js";
import { keepCurrent } from "./live.js";
import { state } from "./state.js";
import { openNotesFor } from "./notes/index.js";

const STATE_TAGS = {
  queued: ["Queued", "blue"],
  sending: ["Sending", "yellow"],
  unknown: ["Checking", "orange"],
  retrying: ["Will retry", "orange"],
  filed: ["Filed", "green"],
  parked: ["Needs attention", "red"],
  awaiting_paste_confirmation: ["Waiting for paste", "purple"],
  paste_unconfirmed: ["Was it pasted?", "red"],
  filed_manually: ["Pasted by hand", "green"],
};

/** `historyPages`: pages of filed entries shown (0 without "Also show notes already filed"). */
const outbox = { entries: [], patients: new Map(), historyPages: 0, nextBefore: null };

/** The newest `count` pages of filed entries: `{entries, nextBefore}` (null after the last). */
async function historyPages(count) {
  const entries = [];
  let before = null;
  for (let i = 0; i < count; i++) {
    const page = await api.outboxHistory(before);
    entries.push(...page.entries);
    before = page.next_before;
    if (before === null) break;
  }
  return { entries, nextBefore: before };
}

async function showOlder() {
  outbox.historyPages += 1;
  await refresh();
  byId("outbox-older")?.focus();
}

export function initOutbox() {
  replaceChildren(
    byId("outbox"),
    h("p", { class: "nhsuk-body" }, "Approved notes waiting to be filed in SystmOne, in the order they will be sent (one request a second)."),
    h(
      "div",
      { class: "nhsuk-checkboxes nhsuk-checkboxes--small nhsuk-u-margin-bottom-4" },
      h(
        "div",
        { class: "nhsuk-checkboxes__item" },
        h("input", {
          class: "nhsuk-checkboxes__input",
          id: "outbox-finished",
          type: "checkbox",
          "data-testid": "outbox-finished",
          on: {
            change: () => {
              outbox.historyPages = 0;
              loadOutbox();
            },
          },
        }),
        h("label", { class: "nhsuk-label nhsuk-checkboxes__label", for: "outbox-finished" }, "Also show notes already filed"),
      ),
    ),
    h("div", { id: "outbox-list", "data-testid": "outbox-list" }),
  );
  keepCurrent({
    view: "outbox",
    scopes: ["outbox", "notes", "patients"],
    redraw: () => refresh(),
    // Never redraw under someone about to press a button in the table.
    canRedraw: () => !byId("outbox-list").contains(document.activeElement),
    container: byId("outbox-list"),
  });
}

export async function loadOutbox() {
  return refresh();
}

async function refresh() {
  try {
    const finished = byId("outbox-finished").checked;
    // The filed history a page at a time: as many pages as were shown before this redraw.
    const pages = finished ? Math.max(1, outbox.historyPages) : 0;
    const [queue, patients, history] = await Promise.all([api.outbox(), wardPatients(), historyPages(pages)]);
    outbox.entries = [...queue, ...history.entries];
    outbox.historyPages = pages;
    outbox.nextBefore = history.nextBefore;
    outbox.patients = new Map(patients.map((p) => [p.id, p]));
  } catch (error) {
    if (state.view === "outbox") showApiError(error);
    return false;
  }
  render();
  return true;
}

function sentence(s) {
  const t = String(s ?? "");
  return t ? t[0].toUpperCase() + t.slice(1) : t;
}

function render() {
  const list = byId("outbox-list");
  if (!outbox.entries.length) {
    replaceChildren(list, h("p", { class: "nhsuk-body", "data-testid": "outbox-empty" }, "Nothing is waiting to be filed."));
    return;
  }
  replaceChildren(
    list,
    h(
      "table",
      { class: "nhsuk-table", "data-testid": "outbox-table" },
      h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, "Outbox"),
      h(
        "thead",
        { class: "nhsuk-table__head" },
        h("tr", { class: "nhsuk-table__row" }, ["Patient", "Note", "State", "Attempts", "Expected", "Actions"].map((l) => h("th", { class: "nhsuk-table__header", scope: "col" }, l))),
      ),
      h("tbody", { class: "nhsuk-table__body" }, outbox.entries.map(row)),
    ),
    outbox.historyPages && outbox.nextBefore !== null
      ? h("button", {
          type: "button",
          class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
          id: "outbox-older",
          "data-testid": "outbox-older",
          on: { click: showOlder },
        }, "Show older filed notes")
      : null,
  );
}

function row(e) {
  const patient = outbox.patients.get(e.patient_id);
  const [label, colour] = STATE_TAGS[e.state_kind] ?? [e.state_kind, "grey"];
  const id = `outbox-${e.note_id}`;
  return h(
    "tr",
    { class: "nhsuk-table__row", "data-testid": id, "data-note-id": e.note_id, "data-state": e.state_kind },
    h("td", { class: "nhsuk-table__cell" }, patient ? `${patient.bed}: ${patient.name}` : `Patient ${e.patient_id}`),
    h("td", { class: "nhsuk-table__cell app-nowrap" }, e.reference, e.interactive ? [" ", tag("File now", "aqua-green")] : null),
    h(
      "td",
      { class: "nhsuk-table__cell" },
      tag(label, colour, `${id}-state`),
      h("div", { class: "nhsuk-body-s", "data-testid": `${id}-text` }, sentence(e.status_text)),
      e.last_error ? h("div", { class: "nhsuk-body-s app-error-text", "data-testid": `${id}-error` }, `Last error: ${e.last_error}`) : null,
    ),
    h("td", { class: "nhsuk-table__cell" }, String(e.attempts)),
    h("td", { class: "nhsuk-table__cell" }, e.eta ? formatDateTime(e.eta) : ""),
    h("td", { class: "nhsuk-table__cell" }, h("div", { class: "app-task-actions" }, actions(e, id))),
  );
}

function button(id, label, aria, onClick, secondary = true) {
  return h(
    "button",
    {
      type: "button",
      class: `nhsuk-button nhsuk-button--small${secondary ? " nhsuk-button--secondary" : ""}`,
      id,
      "data-testid": id,
      "data-edit-control": "",
      "aria-label": aria,
      on: { click: onClick },
    },
    label,
  );
}

function actions(e, id) {
  const out = [];
  if (["queued", "retrying"].includes(e.state_kind) && !e.interactive) {
    out.push(button(`${id}-file-now`, "File now", `File now: ${e.reference}`, () => act(() => api.fileNoteNow(e.note_id), `Filing now: ${e.reference}`)));
  }
  if (e.state_kind === "parked") {
    out.push(
      button(`${id}-in-record`, "It is in the record", `It is in the record: ${e.reference}`, () =>
        act(() => api.resolveParkedNote(e.note_id, true), `Marked as in the record: ${e.reference}`), false),
      button(`${id}-send-again`, "It is not in the record, send again", `It is not in the record, send again: ${e.reference}`, () =>
        act(() => api.resolveParkedNote(e.note_id, false), `Queued again: ${e.reference}`)),
    );
  }
  if (["awaiting_paste_confirmation", "paste_unconfirmed"].includes(e.state_kind)) {
    out.push(h("a", { class: "nhsuk-link", href: "#notes", "data-testid": `${id}-open-note`, on: { click: () => openNotesFor(e.patient_id) } }, "Answer in Case notes"));
  }
  return out;
}

async function act(action, done) {
  clearErrors();
  try {
    await action();
  } catch (error) {
    showApiError(error);
    return;
  }
  byId("outbox-title").focus();
  await refresh();
  notify(done);
}
