// Finding a patient in SystmOne: by NHS number (checked as it is typed), or by two or more
// details; the results, or this ward's own patients when SystmOne cannot be reached.

import { api } from "../api.js";
import { h, byId, replaceChildren, tag, visuallyHidden } from "../dom.js";
import { showApiError, showErrors, clearErrors } from "../errors.js";
import { checkNhsNumber } from "../nhs.js";
import { choose } from "./review.js";
import { showWaiting } from "./waiting.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const DETAIL_FIELDS = [
  { key: "surname", id: "lookup-surname", label: "Surname", hint: "The start of the name is enough, for example O'Br", width: "nhsuk-input--width-20" },
  { key: "first_name", id: "lookup-first-name", label: "First name", width: "nhsuk-input--width-20" },
  { key: "date_of_birth", id: "lookup-dob", label: "Date of birth", hint: "Year-month-day, for example 1984-03-12", width: "nhsuk-input--width-10", placeholder: "YYYY-MM-DD", inputmode: "numeric" },
  { key: "postcode", id: "lookup-postcode", label: "Postcode", hint: "Full postcode or district, for example LS1 4AB or LS1", width: "nhsuk-input--width-10" },
  { key: "telephone", id: "lookup-telephone", label: "Telephone", width: "nhsuk-input--width-20", inputmode: "tel" },
];

/** The backend's field names (`search_patients`' input, see `ApiError.field`) → this form's inputs. */
const SEARCH_FIELDS = {
  nhs_number: "lookup-nhs",
  sex: "lookup-sex",
  ...Object.fromEntries(DETAIL_FIELDS.map((f) => [f.key, f.id])),
};

const search = {
  results: [],
  source: null,
  searching: false,
};

function formatBirthDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso ?? ""));
  return m ? `${Number(m[3])} ${MONTHS[Number(m[2]) - 1]} ${m[1]}` : "";
}

function sexLabel(code) {
  return { M: "Male", F: "Female", I: "Indeterminate", U: "Unknown" }[code] ?? (code || "");
}

function textField(f) {
  const hintId = f.hint ? `${f.id}-hint` : undefined;
  return h(
    "div",
    { class: "nhsuk-form-group" },
    h("label", { class: "nhsuk-label", for: f.id }, f.label),
    f.hint ? h("div", { class: "nhsuk-hint", id: hintId }, f.hint) : null,
    h("input", {
      class: `nhsuk-input ${f.width}`,
      id: f.id,
      name: f.key,
      type: "text",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: f.placeholder,
      inputmode: f.inputmode,
      "aria-describedby": hintId,
      "data-testid": f.id,
    }),
  );
}

/** The search form. */
export function searchForm() {
  return h(
    "form",
    { id: "lookup-form", "data-testid": "lookup-form", novalidate: true, on: { submit: (e) => (e.preventDefault(), runSearch()) } },
    h(
      "div",
      { class: "nhsuk-form-group", id: "lookup-nhs-group" },
      h("label", { class: "nhsuk-label nhsuk-label--s", for: "lookup-nhs" }, "NHS number"),
      h("div", { class: "nhsuk-hint", id: "lookup-nhs-hint" }, "10 digits, with or without spaces, for example 999 000 0018"),
      h("p", { class: "app-field-feedback", id: "lookup-nhs-feedback", "data-testid": "lookup-nhs-feedback", "aria-live": "polite" }),
      h("input", {
        class: "nhsuk-input nhsuk-input--width-10",
        id: "lookup-nhs",
        name: "nhs_number",
        type: "text",
        inputmode: "numeric",
        autocomplete: "off",
        spellcheck: "false",
        "aria-describedby": "lookup-nhs-hint lookup-nhs-feedback",
        "data-testid": "lookup-nhs",
        on: { input: nhsTyped, change: nhsTyped, blur: nhsLeft },
      }),
    ),
    h(
      "fieldset",
      { class: "nhsuk-fieldset" },
      h("legend", { class: "nhsuk-fieldset__legend nhsuk-fieldset__legend--s" }, "Or search by at least two of these details"),
      h(
        "div",
        { class: "app-filters" },
        DETAIL_FIELDS.slice(0, 3).map(textField),
        h(
          "div",
          { class: "nhsuk-form-group" },
          h("label", { class: "nhsuk-label", for: "lookup-sex" }, "Sex"),
          h(
            "select",
            { class: "nhsuk-select", id: "lookup-sex", name: "sex", "data-testid": "lookup-sex" },
            h("option", { value: "" }, "Any"),
            h("option", { value: "F" }, "Female"),
            h("option", { value: "M" }, "Male"),
          ),
        ),
        DETAIL_FIELDS.slice(3).map(textField),
      ),
    ),
    h(
      "div",
      { class: "app-button-row" },
      h("button", { class: "nhsuk-button", type: "submit", id: "lookup-submit", "data-testid": "lookup-submit" }, "Search"),
      h("button", { class: "nhsuk-button nhsuk-button--secondary", type: "button", id: "lookup-clear", on: { click: clearForm } }, "Clear"),
    ),
  );
}

// ---- NHS number feedback as it is typed ----

function nhsTyped() {
  const input = byId("lookup-nhs");
  const check = checkNhsNumber(input.value);
  const feedback = byId("lookup-nhs-feedback");
  const group = byId("lookup-nhs-group");
  const bad = check.state === "invalid" || (check.state === "incomplete" && check.digits.length > 10);
  group.classList.toggle("nhsuk-form-group--error", bad);
  input.classList.toggle("nhsuk-input--error", bad);
  input.toggleAttribute("aria-invalid", bad);
  feedback.dataset.state = check.state;
  feedback.classList.toggle("app-field-feedback--error", bad);
  feedback.classList.toggle("app-field-feedback--ok", check.state === "valid");
  if (check.state === "valid") replaceChildren(feedback, `Valid NHS number: ${check.formatted}`);
  else if (bad) replaceChildren(feedback, visuallyHidden("Error: "), check.message);
  else if (check.state === "incomplete") replaceChildren(feedback, `${check.formatted} (${check.digits.length} of 10 digits)`);
  else replaceChildren(feedback);
}

/** Shows the number 3-3-4 once typing stops, when it is all digits. */
function nhsLeft() {
  const input = byId("lookup-nhs");
  const check = checkNhsNumber(input.value);
  if (check.digits && check.state !== "invalid" && /^[0-9 -]+$/.test(input.value)) input.value = check.formatted;
}

function clearForm() {
  for (const f of DETAIL_FIELDS) byId(f.id).value = "";
  byId("lookup-nhs").value = "";
  byId("lookup-sex").value = "";
  nhsTyped();
  clearErrors();
  search.results = [];
  replaceChildren(byId("lookup-outcome"));
  replaceChildren(byId("lookup-match"));
  replaceChildren(byId("lookup-review"));
  byId("lookup-nhs").focus();
}

/** Searches for one NHS number, as if typed (Follow SystmOne's "Look up this patient"). */
export function lookUpNhsNumber(nhsNumber) {
  byId("lookup-nhs").value = nhsNumber;
  nhsTyped();
  return runSearch();
}

// ---- Search ----

function readInput() {
  const input = {};
  const nhs = byId("lookup-nhs").value.trim();
  if (nhs) input.nhs_number = nhs;
  for (const f of DETAIL_FIELDS) {
    const v = byId(f.id).value.trim();
    if (v) input[f.key] = v;
  }
  const sex = byId("lookup-sex").value;
  if (sex) input.sex = sex;
  return input;
}

async function runSearch() {
  if (search.searching) return;
  clearErrors();
  replaceChildren(byId("lookup-match"));
  replaceChildren(byId("lookup-review"));
  nhsTyped();
  const input = readInput();
  if (input.nhs_number) {
    const check = checkNhsNumber(input.nhs_number);
    if (check.state !== "valid") {
      showErrors([{ message: check.message, fieldId: "lookup-nhs" }]);
      return;
    }
  }
  const button = byId("lookup-submit");
  search.searching = true;
  button.disabled = true;
  const stopWaiting = showWaiting();
  let outcome;
  try {
    outcome = await api.searchPatients(input);
  } catch (error) {
    replaceChildren(byId("lookup-outcome"));
    showApiError(error, SEARCH_FIELDS);
    return;
  } finally {
    stopWaiting();
    search.searching = false;
    button.disabled = false;
  }
  search.results = outcome.results ?? [];
  search.source = outcome.source;
  renderOutcome(outcome);
}

function renderOutcome(outcome) {
  const parts = [];
  if (outcome.source === "local_cache") {
    parts.push(
      h(
        "div",
        { class: "nhsuk-warning-callout", "data-testid": "lookup-fallback" },
        h("h3", { class: "nhsuk-warning-callout__label" }, h("span", { role: "text" }, visuallyHidden("Important: "), "SystmOne not available")),
        h("p", {}, outcome.notice ?? "SystmOne cannot be reached: showing patients already on this ward only."),
      ),
    );
  } else if (outcome.notice) {
    parts.push(h("div", { class: "nhsuk-inset-text", "data-testid": "lookup-notice" }, visuallyHidden("Information: "), h("p", {}, outcome.notice)));
  }
  const results = outcome.results ?? [];
  parts.push(
    h(
      "p",
      { class: "nhsuk-body", id: "lookup-count", tabindex: "-1", "data-testid": "lookup-count" },
      `${results.length} ${results.length === 1 ? "patient" : "patients"} shown` +
        (outcome.total > results.length ? ` of ${outcome.total} found` : "") +
        (outcome.source === "local_cache" ? " (from this ward's list)" : " (from SystmOne)") +
        ".",
    ),
  );
  if (results.length) parts.push(resultsTable(results, outcome.source));
  replaceChildren(byId("lookup-outcome"), parts);
  byId("lookup-count").focus?.();
}

function resultsTable(results, source) {
  return h(
    "table",
    { class: "nhsuk-table", "data-testid": "lookup-results" },
    h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, "Search results"),
    h(
      "thead",
      { class: "nhsuk-table__head" },
      h("tr", { class: "nhsuk-table__row" }, ["Name", "Date of birth", "Sex", "NHS number", "Address", "Action"].map((l) => h("th", { class: "nhsuk-table__header", scope: "col" }, l))),
    ),
    h(
      "tbody",
      { class: "nhsuk-table__body" },
      results.map((r, i) =>
        h(
          "tr",
          { class: "nhsuk-table__row", "data-testid": `lookup-result-${i}`, "data-nhs": r.nhs_number ?? "" },
          h(
            "td",
            { class: "nhsuk-table__cell" },
            h("span", { "data-testid": `lookup-result-${i}-name` }, r.name),
            r.exact_nhs_match ? [" ", tag("Exact NHS number match", "green", `lookup-result-${i}-exact`)] : null,
            // Death or end of registration, as SystmOne records them: never easy to miss.
            (r.warnings ?? []).map((w, j) => [" ", tag(w.message, "red", `lookup-result-${i}-warning-${j}`)]),
          ),
          h("td", { class: "nhsuk-table__cell" }, formatBirthDate(r.date_of_birth)),
          h("td", { class: "nhsuk-table__cell" }, sexLabel(r.sex)),
          h("td", { class: "nhsuk-table__cell app-nowrap", "data-testid": `lookup-result-${i}-nhs` }, r.nhs_number_formatted ?? "No NHS number"),
          h("td", { class: "nhsuk-table__cell" }, r.address),
          h(
            "td",
            { class: "nhsuk-table__cell" },
            r.nhs_number && source === "systmone"
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
                    id: `lookup-choose-${i}`,
                    "data-testid": `lookup-choose-${i}`,
                    "data-edit-control": "",
                    "aria-label": `Choose ${r.name}`,
                    on: { click: () => choose(r) },
                  },
                  "Choose",
                )
              : null,
          ),
        ),
      ),
    ),
  );
}
