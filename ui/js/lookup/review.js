// Linking a SystmOne result to a ward patient: choose which ward patient it is (or add them),
// review the two records side by side, and confirm.

import { api, wardPatients } from "../api.js";
import { h, byId, replaceChildren, tag, visuallyHidden } from "../dom.js";
import { showApiError, showErrors, clearErrors, notify } from "../errors.js";
import { formatNhsNumber } from "../format.js";
import { showWaiting } from "./waiting.js";

/** The backend's field names (`add_patient`'s input, see `ApiError.field`) → the new-patient inputs. */
const NEW_PATIENT_FIELDS = { bed: "match-new-bed", name: "match-new-name" };

const link = {
  /** The search result being linked. */
  chosen: null,
  /** The last side-by-side review. */
  shown: null,
};

// ---- Which ward patient is it? ----

export async function choose(result) {
  clearErrors();
  link.chosen = result;
  replaceChildren(byId("lookup-review"));
  let patients;
  try {
    patients = await wardPatients();
  } catch (error) {
    showApiError(error);
    return;
  }
  const already = patients.find((p) => p.nhs_number === result.nhs_number);
  const radio = (value, id, label, extra) =>
    h(
      "div",
      { class: "nhsuk-radios__item" },
      h("input", { class: "nhsuk-radios__input", id, name: "match-patient", type: "radio", value, "data-testid": id, ...extra }),
      h("label", { class: "nhsuk-label nhsuk-radios__label", for: id }, label),
    );
  const unlinked = patients.filter((p) => !p.nhs_number);
  const panel = h(
    "form",
    { id: "match-form", "data-testid": "match-form", novalidate: true, on: { submit: (e) => (e.preventDefault(), startReview()) } },
    h(
      "fieldset",
      { class: "nhsuk-fieldset", "aria-describedby": "match-hint" },
      h("legend", { class: "nhsuk-fieldset__legend nhsuk-fieldset__legend--m" }, h("h2", { class: "nhsuk-fieldset__heading", id: "match-title", tabindex: "-1" }, `Which ward patient is ${result.name}?`)),
      h("div", { class: "nhsuk-hint", id: "match-hint" }, `NHS number ${result.nhs_number_formatted}. Choose the patient on this ward, or add them.`),
      already
        ? h("div", { class: "nhsuk-inset-text", "data-testid": "match-already" }, h("p", {}, `${already.bed}: ${already.name} is already linked to this NHS number.`))
        : null,
      h(
        "div",
        { class: "nhsuk-radios", id: "match-patient" },
        unlinked.map((p) => radio(String(p.id), `match-patient-${p.id}`, `${p.bed}: ${p.name}`)),
        unlinked.length ? h("div", { class: "nhsuk-radios__divider" }, "or") : null,
        radio("new", "match-new", "Add as a new ward patient", { checked: unlinked.length === 0, on: { change: toggleNew } }),
      ),
      h(
        "div",
        { class: "app-new-patient", id: "match-new-fields", hidden: unlinked.length !== 0 },
        h(
          "div",
          { class: "nhsuk-form-group" },
          h("label", { class: "nhsuk-label", for: "match-new-bed" }, "Bed"),
          h("input", { class: "nhsuk-input nhsuk-input--width-10", id: "match-new-bed", type: "text", autocomplete: "off", value: "Not yet allocated", "data-testid": "match-new-bed" }),
        ),
        h(
          "div",
          { class: "nhsuk-form-group" },
          h("label", { class: "nhsuk-label", for: "match-new-name" }, "Patient's name"),
          h("input", { class: "nhsuk-input nhsuk-input--width-20", id: "match-new-name", type: "text", autocomplete: "off", spellcheck: "false", value: result.name, "data-testid": "match-new-name" }),
        ),
      ),
    ),
    h("button", { class: "nhsuk-button", type: "submit", id: "match-review", "data-testid": "match-review", "data-edit-control": "" }, "Review the match"),
  );
  for (const input of panel.querySelectorAll('input[name="match-patient"]')) input.addEventListener("change", toggleNew);
  replaceChildren(byId("lookup-match"), panel);
  byId("match-title").focus();
}

function toggleNew() {
  const chosen = document.querySelector('input[name="match-patient"]:checked');
  byId("match-new-fields").hidden = chosen?.value !== "new";
}

async function startReview() {
  clearErrors();
  const result = link.chosen;
  const chosen = document.querySelector('input[name="match-patient"]:checked');
  if (!result) return;
  if (!chosen) {
    showErrors([{ message: "Choose which ward patient this is, or add them as a new ward patient", href: "#match-patient" }]);
    return;
  }
  let patientId = Number(chosen.value);
  const button = byId("match-review");
  button.disabled = true;
  try {
    if (chosen.value === "new") {
      const added = await api
        .addPatient({ bed: byId("match-new-bed").value, name: byId("match-new-name").value, nhs_number: "" })
        .catch((error) => {
          showApiError(error, NEW_PATIENT_FIELDS);
          return null;
        });
      if (!added) return;
      patientId = added.id;
      // The patient now exists: choosing again picks them rather than adding a second.
      await choose(result);
      const radio = document.getElementById(`match-patient-${patientId}`);
      if (radio) radio.checked = true;
      toggleNew();
    }
    const stopWaiting = showWaiting();
    let found;
    try {
      found = await api.reviewLink(patientId, result.nhs_number);
    } catch (error) {
      showApiError(error);
      return;
    } finally {
      stopWaiting();
    }
    link.shown = found;
    renderReview(found, { confirm: true });
  } finally {
    if (document.getElementById("match-review")) byId("match-review").disabled = false;
  }
}

export function reviewTable(review, testid) {
  return h(
    "table",
    { class: "nhsuk-table app-review-table", "data-testid": testid },
    h("caption", { class: "nhsuk-table__caption" }, "Ward record and SystmOne side by side"),
    h(
      "thead",
      { class: "nhsuk-table__head" },
      h("tr", { class: "nhsuk-table__row" }, ["Detail", "On this ward", "In SystmOne", ""].map((l) => h("th", { class: "nhsuk-table__header", scope: "col" }, l))),
    ),
    h(
      "tbody",
      { class: "nhsuk-table__body" },
      review.fields.map((f, i) =>
        h(
          "tr",
          {
            class: `nhsuk-table__row${f.differs ? " app-row--differs" : ""}`,
            "data-testid": `${testid}-row-${i}`,
            "data-label": f.label,
            "data-differs": f.differs ? "true" : "false",
          },
          h("th", { class: "nhsuk-table__header", scope: "row" }, f.label),
          h("td", { class: "nhsuk-table__cell" }, f.local ?? "(not recorded)"),
          h("td", { class: "nhsuk-table__cell" }, f.systmone ?? "(not recorded)"),
          h("td", { class: "nhsuk-table__cell" }, f.differs ? tag("Differs", "orange", `${testid}-row-${i}-differs`) : null),
        ),
      ),
    ),
  );
}

/**
 * SystmOne says the patient has died or their registration has ended: shown above everything
 * else on the review, in the NHS.UK warning callout, never only as a table row.
 */
export function endOfRecordWarnings(warnings, testid) {
  if (!Array.isArray(warnings) || warnings.length === 0) return null;
  return h(
    "div",
    { class: "nhsuk-warning-callout", "data-testid": testid, role: "alert" },
    h("h3", { class: "nhsuk-warning-callout__label" }, h("span", { role: "text" }, visuallyHidden("Important: "), "Check before linking")),
    warnings.map((w) => h("p", { "data-kind": w.kind }, w.message)),
  );
}

function renderReview(review, { confirm }) {
  const patient = review.patient;
  const content = [
    h("h2", { class: "nhsuk-heading-m", id: "review-title", tabindex: "-1" }, `Check this is the same patient: ${patient.bed}: ${patient.name}`),
    review.any_differences
      ? h(
          "div",
          { class: "nhsuk-warning-callout", "data-testid": "review-differences" },
          h("h3", { class: "nhsuk-warning-callout__label" }, h("span", { role: "text" }, visuallyHidden("Important: "), "Some details differ")),
          h("p", {}, "The highlighted rows do not match. Only confirm if you are sure this is the same person."),
        )
      : null,
    endOfRecordWarnings(review.warnings, "review-warnings"),
    reviewTable(review, "review-table"),
  ];
  if (confirm) {
    content.push(
      h(
        "div",
        { class: "app-button-row" },
        h(
          "button",
          { class: "nhsuk-button", type: "button", id: "review-confirm", "data-testid": "review-confirm", "data-edit-control": "", on: { click: () => confirmLink(review) } },
          "Confirm this is the same patient",
        ),
        h(
          "button",
          {
            class: "nhsuk-button nhsuk-button--secondary",
            type: "button",
            id: "review-cancel",
            on: { click: () => (replaceChildren(byId("lookup-review")), byId("lookup-nhs").focus()) },
          },
          "This is not the same patient",
        ),
      ),
    );
  }
  replaceChildren(byId("lookup-review"), content);
  byId("review-title").focus();
}

async function confirmLink(review) {
  clearErrors();
  const button = byId("review-confirm");
  button.disabled = true;
  let patient;
  try {
    patient = await api.confirmLink(review.patient.id, review.nhs_number);
  } catch (error) {
    button.disabled = false;
    showApiError(error);
    return;
  }
  replaceChildren(byId("lookup-match"));
  replaceChildren(byId("lookup-review"));
  const message = `Linked ${patient.bed}: ${patient.name} to NHS number ${formatNhsNumber(patient.nhs_number)}`;
  // The board's own routing clears the notice as it opens; say it once the board is showing.
  window.addEventListener("hashchange", () => notify(message), { once: true });
  location.hash = "#board";
}
