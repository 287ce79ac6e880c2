// Settings: who is using this computer, and where the data lives.

import { api } from "./api.js";
import { h, byId, replaceChildren } from "./dom.js";
import { showApiError, clearErrors, notify } from "./errors.js";
import { state } from "./state.js";

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
