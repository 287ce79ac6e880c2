// Settings: who is using this computer, the ward's settings, the note templates, and where
// the data lives. Every ward setting change is audited by the backend under the current user.

import { api, call } from "./api.js";
import { h, byId, replaceChildren } from "./dom.js";
import { showApiError, showErrors, clearErrors, notify } from "./errors.js";
import { sentence } from "./format.js";
import { state } from "./state.js";
import { initTemplates, loadTemplates } from "./templates.js";

/** The values last read from the database, by setting name (null = not set). */
let savedSettings = new Map();

const YES_NO_SETTINGS = [
  {
    name: "require-cosignature",
    id: "ward-cosign",
    legend: "Do notes approved by students and healthcare assistants need a co-signature?",
    hint: "When yes, a registered clinician must co-sign their notes before they are filed in SystmOne.",
    label: "Co-signature required",
  },
  {
    name: "systmone-api-disabled",
    id: "ward-api-off",
    legend: "Switch off filing in SystmOne (clipboard only)?",
    hint: "When yes, the app never writes to SystmOne: approved notes are copied for you to paste by hand.",
    label: "SystmOne filing switched off",
  },
];
const ASSIGNEE_KINDS = [
  ["team", "Team"],
  ["group", "Group"],
  ["user", "User"],
];

export function initSettings({ onUserChanged }) {
  byId("user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let saved;
    try {
      saved = await api.setCurrentUser(byId("user-name").value);
    } catch (error) {
      showApiError(error, { staff: "user-name" });
      return;
    }
    await onUserChanged();
    byId("user-name").value = saved;
    notify(`Current user is now ${saved}`);
  });
  renderWardSettingsForm();
  initTemplates();
}

/** The Settings view's load: what the status says, then the ward settings and templates from the database. */
export async function loadSettings() {
  renderSettings();
  const [settingsLoaded, templatesLoaded] = await Promise.all([loadWardSettings(), loadTemplates()]);
  return settingsLoaded && templatesLoaded;
}

function yesNoGroup({ id, legend, hint }) {
  const radio = (suffix, value, label) =>
    h(
      "div",
      { class: "nhsuk-radios__item" },
      h("input", { class: "nhsuk-radios__input", id: `${id}-${suffix}`, name: id, type: "radio", value, "data-testid": `${id}-${suffix}` }),
      h("label", { class: "nhsuk-label nhsuk-radios__label", for: `${id}-${suffix}` }, label),
    );
  return h(
    "div",
    { class: "nhsuk-form-group" },
    h(
      "fieldset",
      { class: "nhsuk-fieldset", id: `${id}-fieldset`, "aria-describedby": `${id}-hint` },
      h("legend", { class: "nhsuk-fieldset__legend nhsuk-fieldset__legend--s" }, legend),
      h("div", { class: "nhsuk-hint", id: `${id}-hint` }, hint),
      h("div", { class: "nhsuk-radios nhsuk-radios--inline" }, radio("yes", "true", "Yes"), radio("no", "false", "No")),
    ),
  );
}

function renderWardSettingsForm() {
  replaceChildren(
    byId("ward-settings"),
    h(
      "form",
      { id: "ward-settings-form", "data-testid": "ward-settings-form", "data-edit": "", novalidate: true, on: { submit: saveWardSettings } },
      h("h2", { class: "nhsuk-heading-m", id: "ward-settings-title" }, "Ward settings"),
      h("p", { class: "nhsuk-body" }, "These apply to everyone using the app on this ward. Every change is recorded in the audit under your name."),
      YES_NO_SETTINGS.map(yesNoGroup),
      h(
        "div",
        { class: "nhsuk-form-group" },
        h("label", { class: "nhsuk-label nhsuk-label--s", for: "ward-role" }, "Your role"),
        h("div", { class: "nhsuk-hint", id: "ward-role-hint" }, "For example Staff Nurse, Student Nurse or Healthcare Assistant. Students and healthcare assistants need a co-signature when the ward asks for one. Leave empty to clear."),
        h("input", { class: "nhsuk-input nhsuk-input--width-20", id: "ward-role", name: "ward-role", type: "text", autocomplete: "off", "aria-describedby": "ward-role-hint", "data-testid": "ward-role" }),
      ),
      h(
        "div",
        { class: "nhsuk-form-group" },
        h(
          "fieldset",
          { class: "nhsuk-fieldset", "aria-describedby": "ward-assignee-hint" },
          h("legend", { class: "nhsuk-fieldset__legend nhsuk-fieldset__legend--s" }, "Default assignee for tasks sent to SystmOne"),
          h("div", { class: "nhsuk-hint", id: "ward-assignee-hint" }, "SystmOne's own name for the team, group or user, for example Ward 7 Nurses. Leave both empty to clear."),
          h(
            "div",
            { class: "nhsuk-form-group app-inline-group" },
            h("label", { class: "nhsuk-label", for: "ward-assignee-kind" }, "Kind"),
            h(
              "select",
              { class: "nhsuk-select", id: "ward-assignee-kind", name: "ward-assignee-kind", "data-testid": "ward-assignee-kind" },
              h("option", { value: "" }, "Not set"),
              ASSIGNEE_KINDS.map(([value, label]) => h("option", { value }, label)),
            ),
          ),
          h(
            "div",
            { class: "nhsuk-form-group app-inline-group" },
            h("label", { class: "nhsuk-label", for: "ward-assignee-name" }, "Name"),
            h("input", { class: "nhsuk-input nhsuk-input--width-20", id: "ward-assignee-name", name: "ward-assignee-name", type: "text", autocomplete: "off", spellcheck: "false", "data-testid": "ward-assignee-name" }),
          ),
        ),
      ),
      h("button", { class: "nhsuk-button", type: "submit", id: "ward-settings-save", "data-testid": "ward-settings-save" }, "Save ward settings"),
    ),
  );
}

async function loadWardSettings() {
  let pairs;
  try {
    pairs = await call("ward_settings");
  } catch (error) {
    showApiError(error);
    return false;
  }
  savedSettings = new Map(pairs);
  for (const name of savedSettings.keys()) fillSetting(name);
  return true;
}

/** Puts the stored value of one setting into its field(s). */
function fillSetting(name) {
  const value = savedSettings.get(name) ?? null;
  const yesNo = YES_NO_SETTINGS.find((s) => s.name === name);
  if (yesNo) {
    byId(`${yesNo.id}-yes`).checked = value === "true";
    byId(`${yesNo.id}-no`).checked = value === "false";
  } else if (name === "current-user-role") {
    byId("ward-role").value = value ?? "";
  } else if (name === "task-default-assignee") {
    const [kind, ...rest] = (value ?? "").split(":");
    const known = ASSIGNEE_KINDS.some(([k]) => k === kind.trim());
    byId("ward-assignee-kind").value = known ? kind.trim() : "";
    byId("ward-assignee-name").value = known ? rest.join(":").trim() : value ?? "";
  }
}

/** What the form asks for, by setting name; `problem` when a field cannot be sent as it is. */
function wantedSettings() {
  const wanted = [];
  for (const s of YES_NO_SETTINGS) {
    const checked = document.querySelector(`input[name="${s.id}"]:checked`);
    // Neither radio chosen: the ward never set it, and the form leaves it so.
    if (checked) wanted.push({ name: s.name, value: checked.value, label: s.label, fieldId: null });
  }
  const role = byId("ward-role").value.trim();
  wanted.push({ name: "current-user-role", value: role || null, label: "Your role", fieldId: "ward-role" });
  const kind = byId("ward-assignee-kind").value;
  const who = byId("ward-assignee-name").value.trim();
  const assignee = { name: "task-default-assignee", value: kind && who ? `${kind}:${who}` : null, label: "Default assignee", fieldId: "ward-assignee-name" };
  if (kind && !who) assignee.problem = { message: `Enter the ${kind}'s name as SystmOne spells it, or choose Not set`, fieldId: "ward-assignee-name" };
  if (!kind && who) assignee.problem = { message: "Choose whether the default assignee is a team, a group or a user", fieldId: "ward-assignee-kind" };
  wanted.push(assignee);
  return wanted;
}

async function saveWardSettings(event) {
  event.preventDefault();
  clearErrors();
  const wanted = wantedSettings();
  const invalid = wanted.filter((w) => w.problem).map((w) => w.problem);
  if (invalid.length) {
    showErrors(invalid);
    return;
  }
  const changed = wanted.filter((w) => (savedSettings.get(w.name) ?? null) !== w.value);
  if (!changed.length) {
    notify("No ward settings changed");
    return;
  }
  const problems = [];
  const saved = [];
  for (const w of changed) {
    try {
      await call("set_ward_setting", { name: w.name, value: w.value });
      saved.push(w);
    } catch (error) {
      if (error.code === "no_current_user") {
        showApiError(error);
        return;
      }
      problems.push({ message: `${w.label}: ${sentence(error.message)}`, fieldId: w.fieldId ?? undefined });
    }
  }
  // Reread what the database now holds, but keep what was typed in fields that were refused.
  let pairs = null;
  try {
    pairs = await call("ward_settings");
  } catch (error) {
    problems.push({ message: `The saved settings could not be read back: ${error.message}` });
  }
  if (pairs) {
    savedSettings = new Map(pairs);
    for (const w of saved) fillSetting(w.name);
  }
  if (problems.length) {
    showErrors(problems);
    return;
  }
  notify(`Ward settings saved: ${saved.map((w) => w.label).join(", ")}`);
}

export function renderSettings() {
  const status = state.status;
  if (!status) return;
  const input = byId("user-name");
  if (!input.value && status.current_user) input.value = status.current_user;
  const rows = [
    ["Current user", status.current_user ?? "Not chosen"],
    ["Data folder", status.data_dir],
    ["Database file", status.database],
    ["Database", status.read_only ? "Read-only: changes cannot be saved" : "Ready"],
    ["Schema version", String(status.schema_version)],
  ];
  replaceChildren(
    byId("about"),
    rows.map(([key, value]) =>
      h(
        "div",
        { class: "nhsuk-summary-list__row" },
        h("dt", { class: "nhsuk-summary-list__key" }, key),
        h("dd", { class: "nhsuk-summary-list__value" }, String(value ?? "")),
      ),
    ),
  );
}
