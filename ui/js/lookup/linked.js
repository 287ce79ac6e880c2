// The ward patients linked to SystmOne, each with "Refresh demographics": copy the patient's
// details from SystmOne again and show what changed.

import { api, wardPatients } from "../api.js";
import { h, byId, replaceChildren } from "../dom.js";
import { showApiError, clearErrors, notify } from "../errors.js";
import { formatDateTime, formatNhsNumber } from "../format.js";
import { reviewTable } from "./review.js";
import { showWaiting } from "./waiting.js";

/** The last refresh's result, shown under the list until the view is left. */
let refreshed = null;

export async function renderLinked({ quiet = false } = {}) {
  let patients;
  try {
    patients = (await wardPatients()).filter((p) => p.nhs_number);
  } catch (error) {
    if (!quiet) showApiError(error);
    return;
  }
  const container = byId("lookup-linked");
  if (!patients.length) {
    replaceChildren(container, h("p", { class: "nhsuk-body", "data-testid": "lookup-linked-none" }, "No ward patient is linked to SystmOne yet."));
    return;
  }
  replaceChildren(
    container,
    h(
      "ul",
      { class: "nhsuk-list app-linked-list" },
      patients.map((p) =>
        h(
          "li",
          { "data-testid": `linked-${p.id}` },
          h("strong", {}, `${p.bed}: ${p.name}`),
          ` – NHS number ${formatNhsNumber(p.nhs_number)}. `,
          h("span", { class: "nhsuk-body-s", "data-testid": `linked-${p.id}-as-of` }, p.demographics_as_of ? `Details as of ${formatDateTime(p.demographics_as_of)}.` : "Details not yet copied."),
          " ",
          h(
            "button",
            {
              type: "button",
              class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
              id: `refresh-${p.id}`,
              "data-testid": `refresh-${p.id}`,
              "data-edit-control": "",
              "aria-label": `Refresh demographics for ${p.bed}`,
              on: { click: () => refreshDemographics(p) },
            },
            "Refresh demographics",
          ),
        ),
      ),
    ),
    refreshed,
  );
}

async function refreshDemographics(patient) {
  clearErrors();
  const button = byId(`refresh-${patient.id}`);
  button.disabled = true;
  const stopWaiting = showWaiting();
  let review;
  try {
    review = await api.refreshDemographics(patient.id);
  } catch (error) {
    showApiError(error);
    return;
  } finally {
    stopWaiting();
    if (document.getElementById(`refresh-${patient.id}`)) byId(`refresh-${patient.id}`).disabled = false;
  }
  refreshed = h(
    "div",
    { "data-testid": "refresh-result" },
    h("h3", { class: "nhsuk-heading-s" }, `${review.patient.bed}: ${review.patient.name} – refreshed, as of ${formatDateTime(review.patient.demographics_as_of)}`),
    review.any_differences
      ? h("p", { class: "nhsuk-body" }, "Highlighted rows changed since the last copy.")
      : h("p", { class: "nhsuk-body" }, "Nothing changed since the last copy."),
    reviewTable(review, "refresh-table"),
  );
  await renderLinked();
  notify(`Demographics refreshed for ${review.patient.bed}`);
  document.getElementById(`refresh-${patient.id}`)?.focus();
}
