// The audit log: who changed what, and when.

import { api } from "./api.js";
import { h, byId, replaceChildren } from "./dom.js";
import { showApiError } from "./errors.js";
import { actionLabel, describeDetail, formatDateTime } from "./format.js";
import { keepCurrent } from "./live.js";

/** The filter last asked for with Show (a record number half typed is not applied by a redraw). */
let applied = { entity: "", entityId: "" };

export function initAudit() {
  byId("audit-filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit();
  });
  byId("audit-entity").addEventListener("change", () => loadAudit());
  // Every change is audited, so any change adds an entry: show it as it happens.
  keepCurrent({
    view: "audit",
    scopes: ["audit", "tasks", "patients", "notes", "outbox", "templates", "settings", "task_sync"],
    redraw: () => drawAudit({ quiet: true }),
  });
}

/** The view's load: reads the filter form, then the entries. */
export async function loadAudit() {
  applied = { entity: byId("audit-entity").value, entityId: byId("audit-entity-id").value.trim() };
  return drawAudit({ quiet: false });
}

async function drawAudit({ quiet }) {
  let entries;
  try {
    entries = await api.audit(applied.entity, applied.entityId);
  } catch (error) {
    if (!quiet) showApiError(error);
    return false;
  }
  const container = byId("audit");
  if (!entries.length) {
    replaceChildren(container, h("p", { class: "nhsuk-body", "data-testid": "audit-empty" }, "No audit entries match."));
    return true;
  }
  replaceChildren(
    container,
    h(
      "table",
      { class: "nhsuk-table", "data-testid": "audit-table" },
      h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, "Audit log, newest first"),
      h(
        "thead",
        { class: "nhsuk-table__head" },
        h("tr", { class: "nhsuk-table__row" },
          ["When", "Who", "Accounts", "What", "Record", "Details"].map((label) => h("th", { class: "nhsuk-table__header", scope: "col" }, label))),
      ),
      h("tbody", { class: "nhsuk-table__body" }, entries.map(auditRow)),
    ),
  );
  return true;
}

/**
 * The accounts the row was recorded under: the computer (OS) account and the SystmOne user.
 * Rows written before these were recorded have neither, and say so rather than leave a gap.
 */
function describeAccounts(entry) {
  const parts = [];
  if (entry.os_account) parts.push(`computer: ${entry.os_account}`);
  if (entry.systmone_user) parts.push(`SystmOne: ${entry.systmone_user}`);
  return parts.length ? parts.join(" · ") : "not recorded";
}

function auditRow(entry) {
  const record = entry.entity_id ? `${actionLabel(entry.entity)} ${entry.entity_id}` : actionLabel(entry.entity);
  return h(
    "tr",
    {
      class: "nhsuk-table__row",
      "data-testid": `audit-${entry.id}`,
      "data-action": entry.action,
      "data-entity": entry.entity,
      "data-entity-id": entry.entity_id ?? "",
    },
    h("td", { class: "nhsuk-table__cell nhsuk-u-nowrap" }, formatDateTime(entry.at)),
    h("td", { class: "nhsuk-table__cell" }, entry.actor),
    h("td", { class: "nhsuk-table__cell", "data-testid": `audit-${entry.id}-accounts` }, describeAccounts(entry)),
    h("td", { class: "nhsuk-table__cell" }, actionLabel(entry.action)),
    h("td", { class: "nhsuk-table__cell" }, record),
    h("td", { class: "nhsuk-table__cell" },
      h("ul", { class: "app-audit-detail" }, describeDetail(entry.detail).map((line) => h("li", {}, line)))),
  );
}
