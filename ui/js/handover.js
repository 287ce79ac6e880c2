// The handover sheet: every patient with what is still open, printable.

import { api } from "./api.js";
import { h, byId, replaceChildren, tag } from "./dom.js";
import { showApiError } from "./errors.js";
import { compareBeds, formatDateTime, formatDue, formatNhsNumber } from "./format.js";
import { keepCurrent } from "./live.js";
import { state } from "./state.js";

export function initHandover() {
  byId("handover-print").addEventListener("click", () => window.print());
  // Other people's changes, and every minute for the due and overdue tags. Nothing on the sheet
  // takes the keyboard but the print button, which is not redrawn.
  keepCurrent({ view: "handover", scopes: ["tasks", "patients"], redraw: () => loadHandover(), everyMinute: true });
}

export async function loadHandover() {
  let patients;
  try {
    patients = await api.handover();
  } catch (error) {
    showApiError(error);
    return false;
  }
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}`;
  const by = state.status?.current_user;
  const open = patients.reduce((n, p) => n + p.open_tasks.length, 0);
  byId("handover-generated").textContent =
    `${open} open ${open === 1 ? "task" : "tasks"} for ${patients.length} ${patients.length === 1 ? "patient" : "patients"}. ` +
    `Prepared ${formatDateTime(stamp)}${by ? ` by ${by}` : ""}.`;
  const sorted = [...patients].sort((a, b) => compareBeds(a.patient.bed, b.patient.bed) || a.patient.id - b.patient.id);
  replaceChildren(
    byId("handover"),
    sorted.length
      ? sorted.map((entry) => patientBlock(entry, stamp))
      : h("p", { class: "nhsuk-body", "data-testid": "handover-empty" }, "No patients on the ward list."),
  );
  return true;
}

function patientBlock({ patient, open_tasks: tasks }, now) {
  return h(
    "section",
    { class: "app-patient app-handover-patient", "data-testid": `handover-patient-${patient.id}` },
    h("h2", { class: "nhsuk-heading-m app-patient__heading" }, `${patient.bed}: ${patient.name}`),
    h("p", { class: "nhsuk-body-s app-patient__meta" },
      patient.nhs_number ? `NHS number ${formatNhsNumber(patient.nhs_number)}` : "No NHS number recorded"),
    tasks.length
      ? h(
          "table",
          { class: "nhsuk-table" },
          h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, `Open tasks for ${patient.bed}`),
          h(
            "thead",
            { class: "nhsuk-table__head" },
            h("tr", { class: "nhsuk-table__row" },
              ["Task", "Assigned to", "Due"].map((label) => h("th", { class: "nhsuk-table__header", scope: "col" }, label)),
              h("th", { class: "nhsuk-table__header", scope: "col" }, h("span", { class: "nhsuk-u-visually-hidden" }, "Flags"))),
          ),
          h(
            "tbody",
            { class: "nhsuk-table__body" },
            tasks.map((t) =>
              h(
                "tr",
                { class: "nhsuk-table__row", "data-testid": `handover-task-${t.id}` },
                h("td", { class: "nhsuk-table__cell" }, t.title),
                h("td", { class: "nhsuk-table__cell" }, t.assignee ?? "Unassigned"),
                h("td", { class: "nhsuk-table__cell" }, t.due ? formatDue(t.due, now) : "No due time"),
                h("td", { class: "nhsuk-table__cell" },
                  t.overdue ? tag("Overdue", "red") : t.due_today ? tag("Due today", "orange") : null),
              ),
            ),
          ),
        )
      : h("p", { class: "nhsuk-body" }, "No open tasks."),
  );
}
