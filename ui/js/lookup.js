// Patient lookup: find a patient in SystmOne (by NHS number, or by two or more details), check
// the match side by side with the ward patient, and link them. Also "Refresh demographics" for
// linked patients and "Follow SystmOne" (the patient open in SystmOne now).

import { clinical, systmOneConnected } from "./clinical-api.js";
import { h, byId, replaceChildren, tag, visuallyHidden } from "./dom.js";
import { showApiError, showErrors, clearErrors, notify } from "./errors.js";
import { compareBeds, formatDateTime, formatNhsNumber } from "./format.js";
import { checkNhsNumber, describeWait } from "./nhs.js";
import { state } from "./state.js";
import { openNotesFor } from "./notes.js";

const QUEUE_POLL_MS = 500;
const FOLLOW_POLL_MS = 3_000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const DETAIL_FIELDS = [
  { key: "surname", id: "lookup-surname", label: "Surname", hint: "The start of the name is enough, for example O'Br", width: "nhsuk-input--width-20" },
  { key: "first_name", id: "lookup-first-name", label: "First name", width: "nhsuk-input--width-20" },
  { key: "date_of_birth", id: "lookup-dob", label: "Date of birth", hint: "Year-month-day, for example 1984-03-12", width: "nhsuk-input--width-10", placeholder: "YYYY-MM-DD", inputmode: "numeric" },
  { key: "postcode", id: "lookup-postcode", label: "Postcode", hint: "Full postcode or district, for example LS1 4AB or LS1", width: "nhsuk-input--width-10" },
  { key: "telephone", id: "lookup-telephone", label: "Telephone", width: "nhsuk-input--width-20", inputmode: "tel" },
];

const lookup = {
  results: [],
  source: null,
  chosen: null,
  review: null,
  searching: false,
  followTimer: null,
  follow: null,
  refreshed: null,
};

/** Which input a backend validation message is about (the backend names the field first). */
function fieldForMessage(error) {
  const m = String(error?.message ?? "");
  if (error?.code === "invalid_nhs_number" || /NHS number/i.test(m)) return "lookup-nhs";
  if (/^The surname/i.test(m)) return "lookup-surname";
  if (/^The first name/i.test(m)) return "lookup-first-name";
  if (/date of birth/i.test(m)) return "lookup-dob";
  if (/postcode/i.test(m)) return "lookup-postcode";
  if (/telephone/i.test(m)) return "lookup-telephone";
  if (/^sex\b/i.test(m)) return "lookup-sex";
  return undefined;
}

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

export function initLookup() {
  const form = h(
    "form",
    { id: "lookup-form", "data-testid": "lookup-form", novalidate: true, on: { submit: (e) => (e.preventDefault(), search()) } },
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

  const followSection = h(
    "div",
    { class: "nhsuk-card app-follow", id: "follow-card" },
    h(
      "div",
      { class: "nhsuk-card__content" },
      h("h2", { class: "nhsuk-card__heading nhsuk-heading-s" }, "Follow SystmOne"),
      h(
        "div",
        { class: "nhsuk-checkboxes nhsuk-checkboxes--small" },
        h(
          "div",
          { class: "nhsuk-checkboxes__item" },
          h("input", {
            class: "nhsuk-checkboxes__input",
            id: "follow-toggle",
            type: "checkbox",
            "data-testid": "follow-toggle",
            on: { change: followToggled },
          }),
          h("label", { class: "nhsuk-label nhsuk-checkboxes__label", for: "follow-toggle" }, "Show the patient open in SystmOne"),
        ),
      ),
      h("div", { id: "follow-panel", "data-testid": "follow-panel", "aria-live": "polite" }),
    ),
  );

  replaceChildren(
    byId("lookup"),
    h("p", { class: "nhsuk-body" }, "Find a patient in SystmOne, check the details against the ward patient, then link them."),
    followSection,
    form,
    h("div", { id: "lookup-waiting", "data-testid": "lookup-waiting", class: "nhsuk-inset-text app-waiting", role: "status", hidden: true }),
    h("div", { id: "lookup-outcome", "data-testid": "lookup-outcome" }),
    h("div", { id: "lookup-match", "data-testid": "lookup-match" }),
    h("div", { id: "lookup-review", "data-testid": "lookup-review" }),
    h("h2", { class: "nhsuk-heading-m" }, "Patients linked to SystmOne"),
    h("div", { id: "lookup-linked", "data-testid": "lookup-linked" }),
  );

  document.addEventListener("visibilitychange", scheduleFollow);
}

export async function loadLookup() {
  await renderLinked();
  scheduleFollow();
  return true;
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
  lookup.results = [];
  replaceChildren(byId("lookup-outcome"));
  replaceChildren(byId("lookup-match"));
  replaceChildren(byId("lookup-review"));
  byId("lookup-nhs").focus();
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

async function search() {
  if (lookup.searching) return;
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
  lookup.searching = true;
  button.disabled = true;
  const stopWaiting = showWaiting();
  let outcome;
  try {
    outcome = await clinical.searchPatients(input);
  } catch (error) {
    replaceChildren(byId("lookup-outcome"));
    showErrors([{ message: error.message, fieldId: fieldForMessage(error) }]);
    return;
  } finally {
    stopWaiting();
    lookup.searching = false;
    button.disabled = false;
  }
  lookup.results = outcome.results ?? [];
  lookup.source = outcome.source;
  renderOutcome(outcome);
}

/** Shows how long the search has waited and where it is in SystmOne's queue, every 500 ms. */
function showWaiting() {
  const box = byId("lookup-waiting");
  const started = Date.now();
  let stopped = false;
  const draw = (status) => {
    if (stopped) return;
    const waited = Math.floor((Date.now() - started) / 1000);
    const queue = status?.queue;
    const parts = [`Searching SystmOne… waiting ${waited} s so far.`];
    if (queue) {
      const interactive = (queue.items ?? []).filter((i) => i.lane === "interactive");
      if (interactive.length) {
        const last = interactive[interactive.length - 1];
        parts.push(
          `Your search is number ${interactive.length} in the queue (${queue.background} background request${queue.background === 1 ? "" : "s"} wait behind it); ` +
            `expected to be sent in ${describeWait(last.eta_ms)}.`,
        );
      } else if (queue.in_flight) {
        parts.push("Sent: waiting for SystmOne's answer.");
      }
      parts.push("SystmOne takes one request a second from this PC.");
    }
    box.dataset.waitedSeconds = String(waited);
    replaceChildren(box, h("p", { "data-testid": "lookup-waiting-text" }, parts.join(" ")));
    box.hidden = false;
  };
  draw(null);
  const timer = setInterval(async () => {
    let status = null;
    try {
      status = await clinical.systmoneStatus();
    } catch {
      // the strip shows the link's state; the wait itself is still worth showing
    }
    draw(status);
  }, QUEUE_POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
    box.hidden = true;
    replaceChildren(box);
  };
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
          h("td", { class: "nhsuk-table__cell" }, h("span", { "data-testid": `lookup-result-${i}-name` }, r.name), r.exact_nhs_match ? [" ", tag("Exact NHS number match", "green", `lookup-result-${i}-exact`)] : null),
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

// ---- Which ward patient is it? ----

async function wardPatients() {
  const board = await clinical.board();
  return [...(board.patients ?? [])].sort((a, b) => compareBeds(a.bed, b.bed) || a.id - b.id);
}

async function choose(result) {
  clearErrors();
  lookup.chosen = result;
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
  const result = lookup.chosen;
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
      const added = await clinical
        .addPatient({ bed: byId("match-new-bed").value, name: byId("match-new-name").value, nhs_number: "" })
        .catch((error) => {
          const field = /^The bed\b/.test(error.message) ? "match-new-bed" : /name/.test(error.message) ? "match-new-name" : undefined;
          showErrors([{ message: error.message, fieldId: field }]);
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
    let review;
    try {
      review = await clinical.reviewLink(patientId, result.nhs_number);
    } catch (error) {
      showApiError(error);
      return;
    } finally {
      stopWaiting();
    }
    lookup.review = review;
    renderReview(review, { confirm: true });
  } finally {
    if (document.getElementById("match-review")) byId("match-review").disabled = false;
  }
}

function reviewTable(review, testid) {
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
    patient = await clinical.confirmLink(review.patient.id, review.nhs_number);
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

// ---- Linked patients: refresh demographics ----

async function renderLinked() {
  let patients;
  try {
    patients = (await wardPatients()).filter((p) => p.nhs_number);
  } catch (error) {
    showApiError(error);
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
    lookup.refreshed ? lookup.refreshed : null,
  );
}

async function refreshDemographics(patient) {
  clearErrors();
  const button = byId(`refresh-${patient.id}`);
  button.disabled = true;
  const stopWaiting = showWaiting();
  let review;
  try {
    review = await clinical.refreshDemographics(patient.id);
  } catch (error) {
    showApiError(error);
    return;
  } finally {
    stopWaiting();
    if (document.getElementById(`refresh-${patient.id}`)) byId(`refresh-${patient.id}`).disabled = false;
  }
  lookup.refreshed = h(
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

// ---- Follow SystmOne ----

function followToggled() {
  if (!byId("follow-toggle").checked) {
    lookup.follow = null;
    replaceChildren(byId("follow-panel"));
  }
  scheduleFollow();
}

/** Polls only while the toggle is on, the window is visible and the lookup view is open. */
function scheduleFollow() {
  const wanted = byId("follow-toggle").checked && !document.hidden && state.view === "lookup";
  if (wanted && !lookup.followTimer) {
    lookup.followTimer = setInterval(pollFollow, FOLLOW_POLL_MS);
    pollFollow();
  } else if (!wanted && lookup.followTimer) {
    clearInterval(lookup.followTimer);
    lookup.followTimer = null;
  }
}

async function pollFollow() {
  if (state.view !== "lookup" || document.hidden || !byId("follow-toggle").checked) {
    scheduleFollow();
    return;
  }
  if (!systmOneConnected(state.systmone)) {
    renderFollow(null, "SystmOne is not connected: following resumes when it is.");
    return;
  }
  try {
    const view = await clinical.followSystmOne();
    if (view.skipped_busy) {
      renderFollow(lookup.follow, "SystmOne is busy with queued work: checking again shortly.");
      return;
    }
    lookup.follow = view;
    renderFollow(view, null);
  } catch (error) {
    renderFollow(null, error.message);
  }
}

function renderFollow(view, note) {
  if (!byId("follow-toggle").checked) return;
  const panel = byId("follow-panel");
  const parts = [];
  if (view && !view.nhs_number) {
    parts.push(h("p", { "data-testid": "follow-none" }, "No patient is open in SystmOne."));
  } else if (view) {
    const p = view.patient;
    parts.push(
      h(
        "p",
        { "data-testid": "follow-patient", "data-nhs": view.nhs_number },
        "Open in SystmOne: NHS number ",
        h("strong", {}, view.nhs_number_formatted),
        p ? ` – ${p.bed}: ${p.name} on this ward.` : " – not on this ward's list.",
      ),
    );
    if (p) {
      parts.push(
        h(
          "div",
          { class: "app-task-actions" },
          h("a", { class: "nhsuk-link", href: "#notes", "data-testid": "follow-notes", on: { click: () => openNotesFor(p.id) } }, `Case notes for ${p.bed}`),
          h(
            "a",
            {
              class: "nhsuk-link",
              href: "#board",
              "data-testid": "follow-tasks",
              on: { click: () => (state.filter = { ...state.filter, patient_id: p.id }) },
            },
            `Tasks for ${p.bed}`,
          ),
        ),
      );
    } else {
      parts.push(
        h(
          "button",
          {
            type: "button",
            class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
            id: "follow-lookup",
            "data-testid": "follow-lookup",
            on: {
              click: () => {
                byId("lookup-nhs").value = view.nhs_number_formatted;
                nhsTyped();
                search();
              },
            },
          },
          "Look up this patient",
        ),
      );
    }
  }
  if (note) parts.push(h("p", { class: "nhsuk-body-s", "data-testid": "follow-note" }, note));
  replaceChildren(panel, parts);
}
