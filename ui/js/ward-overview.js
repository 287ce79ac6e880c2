// The whole ward at a glance: one compact row per patient (bed, name, what is overdue, what is
// due next, open tasks, SystmOne sync), so a 30-bed ward fits one 1280×800 screen. Detail is on
// demand: a row's bed opens that patient's tasks further down the board.

import { h, byId, replaceChildren } from "./dom.js";
import { formatDue } from "./format.js";
import { confirmationView } from "./tasksync.js";

/** What a row says about one patient's open tasks (pure, so it is the same on every redraw). */
export function patientGlance(tasks) {
  const open = tasks.filter((t) => t.status === "open");
  const byDue = (a, b) => String(a.due).localeCompare(String(b.due));
  const overdue = open.filter((t) => t.overdue && t.due).sort(byDue);
  const upcoming = open.filter((t) => !t.overdue && t.due).sort(byDue);
  return {
    open: open.length,
    overdue: overdue.length,
    mostOverdue: overdue[0] ?? null,
    dueNext: upcoming[0] ?? null,
  };
}

/** The words for a patient's SystmOne task sync, short enough for one table cell. */
function syncWords(patient, taskSync, now) {
  if (!patient.nhs_number) return { text: "Not linked", stale: false };
  const view = confirmationView(taskSync, now);
  if (!view.confirmedAt) return { text: "Not yet checked", stale: true };
  return { text: view.stale ? `Out of date (${view.confirmed})` : `Checked ${view.confirmed}`, stale: view.stale };
}

/** The patient label as read aloud and shown: "Bed 4: Mary Seacole". */
const label = (p) => `${p.bed}: ${p.name}`;

/**
 * Draws the overview table into #ward-overview. `patients` in bed order; `openTasks` every open
 * task of the ward (whatever the board's filters); `syncByPatient` the board's task_sync rows.
 * `onOpen(patient)` shows that patient's tasks.
 */
export function renderOverview({ patients, openTasks, syncByPatient, now, onOpen }) {
  const container = byId("ward-overview");
  if (!patients.length) {
    replaceChildren(container);
    return;
  }
  const byPatient = new Map();
  for (const t of openTasks) {
    if (!byPatient.has(t.patient_id)) byPatient.set(t.patient_id, []);
    byPatient.get(t.patient_id).push(t);
  }
  const headers = ["Bed", "Patient", "Overdue", "Due next", "Open", "SystmOne"];
  replaceChildren(
    container,
    h(
      "table",
      { class: "nhsuk-table app-ward-table", "data-testid": "ward-overview-table" },
      h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, "The ward at a glance: one row per patient, by bed"),
      h(
        "thead",
        { class: "nhsuk-table__head" },
        h("tr", { class: "nhsuk-table__row" }, headers.map((text) => h("th", { class: "nhsuk-table__header", scope: "col" }, text))),
      ),
      h(
        "tbody",
        { class: "nhsuk-table__body" },
        patients.map((p) => overviewRow(p, patientGlance(byPatient.get(p.id) ?? []), syncByPatient.get(p.id), now, onOpen)),
      ),
    ),
  );
  applyFind();
}

function overviewRow(patient, glance, taskSync, now, onOpen) {
  const id = `overview-${patient.id}`;
  const sync = syncWords(patient, taskSync, now);
  const dueText = (t) => (t.due ? formatDue(t.due, now) : "");
  return h(
    "tr",
    {
      class: `nhsuk-table__row${glance.overdue ? " app-ward-table__row--overdue" : ""}`,
      id,
      "data-testid": id,
      "data-overview-patient": patient.id,
      "data-find": `${patient.bed} ${patient.name}`.toLowerCase(),
      "data-overdue": glance.overdue,
      "data-open": glance.open,
    },
    h(
      "th",
      { class: "nhsuk-table__cell app-ward-table__bed", scope: "row" },
      h(
        "a",
        {
          class: "nhsuk-link",
          href: `#patient-${patient.id}-heading`,
          id: `${id}-open`,
          "data-testid": `${id}-open`,
          "aria-label": `${label(patient)}: show tasks`,
          on: {
            click: (event) => {
              event.preventDefault();
              onOpen(patient);
            },
          },
        },
        patient.bed,
      ),
    ),
    h("td", { class: "nhsuk-table__cell app-ward-table__name", "data-testid": `${id}-name`, title: patient.name }, patient.name),
    h(
      "td",
      { class: "nhsuk-table__cell app-ward-table__text", "data-testid": `${id}-overdue` },
      glance.overdue
        ? [h("strong", {}, `${glance.overdue} overdue`), `: ${glance.mostOverdue.title} (${dueText(glance.mostOverdue)})`]
        : h("span", { class: "app-muted" }, "None"),
    ),
    h(
      "td",
      { class: "nhsuk-table__cell app-ward-table__text", "data-testid": `${id}-due-next` },
      glance.dueNext ? `${glance.dueNext.title} (${dueText(glance.dueNext)})` : h("span", { class: "app-muted" }, "Nothing due"),
    ),
    h("td", { class: "nhsuk-table__cell app-ward-table__count", "data-testid": `${id}-open-count` }, String(glance.open)),
    h(
      "td",
      { class: `nhsuk-table__cell app-ward-table__sync${sync.stale ? " app-ward-table__sync--stale" : ""}`, "data-testid": `${id}-sync` },
      sync.text,
    ),
  );
}

/** The rows the "Find a patient" box leaves showing (bed or name contains what was typed). */
export function applyFind() {
  const input = document.getElementById("find-patient");
  const wanted = (input?.value ?? "").trim().toLowerCase();
  let shown = 0;
  for (const row of document.querySelectorAll("tr[data-overview-patient]")) {
    const match = !wanted || row.dataset.find.includes(wanted);
    row.hidden = !match;
    if (match) shown += 1;
  }
  const status = document.getElementById("find-patient-status");
  if (status) status.textContent = wanted ? `${shown} ${shown === 1 ? "patient matches" : "patients match"}` : "";
  return shown;
}

/** The overview's bed links still showing, in bed order. */
export function overviewLinks() {
  return [...document.querySelectorAll("tr[data-overview-patient]:not([hidden]) th a")];
}
