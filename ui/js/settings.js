// Settings: who is acting (from the OS and SystmOne, never typed), an optional display label,
// the ward's settings, the note templates, and where the data lives. Every ward setting change is
// audited by the backend under the acting person; loosening one needs a verified SystmOne role.

import { api } from "./api.js";
import { h, byId, replaceChildren } from "./dom.js";
import { showApiError, showErrors, clearErrors, notify } from "./errors.js";
import { fieldIdFor, sentence } from "./format.js";
import { keepCurrent } from "./live.js";
import { initTemplates, loadTemplates } from "./templates.js";
import { state } from "./state.js";

/**
 * The ward settings as the backend describes them (`ward_settings`): `[{setting, label, hint,
 * kind: "flag"|"text", value}]`. The form is drawn from these, so a setting added in the backend
 * appears here with no change to this file. `value` is what the database held when last read.
 */
let settings = [];

/** The backend's field names (see `ApiError.field`) → the user form's input. */
const USER_FIELDS = { name: "user-name" };

const inputId = (setting) => `ward-${setting}`;

export function initSettings({ onUserChanged }) {
  byId("user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let saved;
    try {
      saved = await api.setCurrentUser(byId("user-name").value);
    } catch (error) {
      showApiError(error, USER_FIELDS);
      return;
    }
    await onUserChanged();
    byId("user-name").value = saved;
    notify(`Display label is now ${saved}`);
  });
  replaceChildren(
    byId("ward-settings"),
    h(
      "form",
      { id: "ward-settings-form", "data-testid": "ward-settings-form", "data-edit": "", novalidate: true, on: { submit: saveWardSettings } },
      h("h2", { class: "nhsuk-heading-m", id: "ward-settings-title" }, "Ward settings"),
      h("p", { class: "nhsuk-body" }, "These apply to everyone using the app on this ward. Every change is recorded in the audit under your name."),
      h("div", { id: "ward-settings-fields", "data-testid": "ward-settings-fields" }),
      h("button", { class: "nhsuk-button", type: "submit", id: "ward-settings-save", "data-testid": "ward-settings-save" }, "Save ward settings"),
    ),
  );
  // A setting changed elsewhere (another window, hubctl): fields nobody has touched show the new
  // value; what someone has typed and not saved is kept.
  keepCurrent({
    view: "settings",
    scopes: ["settings"],
    redraw: refreshWardSettings,
    canRedraw: () => !byId("ward-settings-form").contains(document.activeElement),
    container: byId("ward-settings-form"),
  });
  initTemplates();
}

/** The Settings view's load: what the status says, then the ward settings and templates from the database. */
export async function loadSettings() {
  renderSettings();
  const [settingsLoaded, templatesLoaded] = await Promise.all([loadWardSettings(), loadTemplates()]);
  return settingsLoaded && templatesLoaded;
}

function settingField(d) {
  const id = inputId(d.setting);
  const hintId = d.hint ? `${id}-hint` : undefined;
  const hint = (cls) => (d.hint ? h("div", { class: cls, id: hintId }, d.hint) : null);
  if (d.kind === "flag") {
    return h(
      "div",
      { class: "nhsuk-form-group", "data-setting": d.setting },
      h(
        "div",
        { class: "nhsuk-checkboxes" },
        h(
          "div",
          { class: "nhsuk-checkboxes__item" },
          h("input", { class: "nhsuk-checkboxes__input", id, name: id, type: "checkbox", value: "true", "aria-describedby": hintId, "data-testid": id }),
          h("label", { class: "nhsuk-label nhsuk-checkboxes__label", for: id }, d.label),
          hint("nhsuk-hint nhsuk-checkboxes__hint"),
        ),
      ),
    );
  }
  return h(
    "div",
    { class: "nhsuk-form-group", "data-setting": d.setting },
    h("label", { class: "nhsuk-label nhsuk-label--s", for: id }, d.label),
    hint("nhsuk-hint"),
    h("input", { class: "nhsuk-input nhsuk-input--width-20", id, name: id, type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": hintId, "data-testid": id }),
  );
}

function renderFields() {
  const container = byId("ward-settings-fields");
  replaceChildren(container, settings.map(settingField));
  for (const d of settings) fill(d);
  for (const input of container.querySelectorAll("input")) input.disabled = state.readOnly;
}

/** Reads the settings and draws the form afresh from them. */
async function loadWardSettings() {
  let read;
  try {
    read = await api.wardSettings();
  } catch (error) {
    showApiError(error);
    return false;
  }
  settings = read;
  renderFields();
  return true;
}

/** Shows the stored value of one setting in its input. */
function fill(d) {
  const input = document.getElementById(inputId(d.setting));
  if (!input) return;
  if (d.kind === "flag") input.checked = d.value === "true";
  else input.value = d.value ?? "";
}

/**
 * What the form asks for one setting: a flag left unticked stays as it was when it was never
 * set (null), so an untouched setting is not saved as "false"; an empty text clears (null).
 */
function wanted(d) {
  const input = document.getElementById(inputId(d.setting));
  if (!input) return d.value ?? null;
  if (d.kind === "flag") return input.checked ? "true" : d.value === null || d.value === undefined ? null : "false";
  return input.value.trim() || null;
}

const edited = (d) => wanted(d) !== (d.value ?? null);

const sameShape = (a, b) =>
  a.length === b.length && a.every((d, i) => d.setting === b[i].setting && d.kind === b[i].kind && d.label === b[i].label && d.hint === b[i].hint);

/** After a change elsewhere: new values into untouched fields; typing not yet saved stays. */
async function refreshWardSettings() {
  let read;
  try {
    read = await api.wardSettings();
  } catch {
    return; // the next save or visit shows why
  }
  if (!sameShape(read, settings)) {
    if (settings.some(edited)) return; // redrawn on the next visit rather than under the typing
    settings = read;
    renderFields();
    return;
  }
  const before = new Map(settings.map((d) => [d.setting, edited(d)]));
  settings = read;
  for (const d of settings) if (!before.get(d.setting)) fill(d);
}

async function saveWardSettings(event) {
  event.preventDefault();
  clearErrors();
  const changed = settings.filter(edited).map((d) => ({ d, value: wanted(d) }));
  if (!changed.length) {
    notify("No ward settings changed");
    return;
  }
  const problems = [];
  const saved = [];
  for (const { d, value } of changed) {
    try {
      await api.setWardSetting(d.setting, value);
      saved.push(d);
    } catch (error) {
      if (error.code === "no_current_user" || error.code === "unattributed") {
        showApiError(error);
        return;
      }
      problems.push({ message: `${d.label}: ${sentence(error.message)}`, fieldId: fieldIdFor(error, { value: inputId(d.setting) }) });
    }
  }
  // Reread what the database now holds, but keep what was typed in fields that were refused.
  let read = null;
  try {
    read = await api.wardSettings();
  } catch (error) {
    problems.push({ message: `The saved settings could not be read back: ${error.message}` });
  }
  if (read) {
    const savedNames = new Set(saved.map((d) => d.setting));
    if (sameShape(read, settings)) {
      settings = read;
      for (const d of settings) if (savedNames.has(d.setting)) fill(d);
    } else {
      settings = read;
      renderFields();
    }
  }
  if (problems.length) {
    showErrors(problems);
    return;
  }
  notify(`Ward settings saved: ${saved.map((d) => d.label).join(", ")}`);
}

export function renderSettings() {
  const status = state.status;
  if (!status) return;
  const input = byId("user-name");
  const identity = status.identity ?? {};
  if (!input.value && identity.display_label) input.value = identity.display_label;
  const role = identity.role ?? {};
  const rows = [
    ["Changes recorded under", status.current_user ?? "Nobody: changes are refused"],
    ["Computer account", identity.os_account ?? identity.os_account_problem ?? "Unknown"],
    ["SystmOne user", identity.systmone_user ? `${identity.systmone_user.name}${identity.systmone_user.user_name ? ` (${identity.systmone_user.user_name})` : ""}` : "Not connected"],
    ["Role", role.kind === "verified" || role.kind === "unmapped" ? role.systmone_role : "Not verified"],
    ["What you can do", identity.summary ?? ""],
    ["Role map", identity.role_map_problem ? `${identity.role_map_source} (${identity.role_map_problem})` : identity.role_map_source ?? ""],
    ["Idle lock", `${status.idle_lock_minutes} minutes`],
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
