// The ward's case-note templates (in Settings): list, add, edit with the version it was opened
// at (a change made meanwhile by someone else is shown, never overwritten), and retire.
// Template text only ever reaches the page as text nodes or input values.

import { api } from "./api.js";
import { h, byId, replaceChildren, tag } from "./dom.js";
import { showApiError, showErrors, clearErrors, notify } from "./errors.js";
import { formatDateTime } from "./format.js";
import { keepCurrent } from "./live.js";

const templates = {
  list: [],
  /** The template being edited: `{id, version}` as it was when opened. */
  editing: null,
};

/** The backend's field names (see `ApiError.field`) → the inputs of each form. */
const ADD_FIELDS = { name: "template-name", body: "template-body" };
const EDIT_FIELDS = { name: "template-edit-name", body: "template-edit-body" };

export function initTemplates() {
  replaceChildren(
    byId("templates"),
    h("h2", { class: "nhsuk-heading-m", id: "templates-title" }, "Note templates"),
    h("p", { class: "nhsuk-body" }, "Templates offered when starting a case note. Retired templates are no longer offered; notes already written from them are unchanged."),
    h("div", { id: "templates-list", "data-testid": "templates-list" }),
    h("div", { id: "template-edit", "data-testid": "template-edit" }),
    h(
      "form",
      { id: "template-add-form", "data-testid": "template-add-form", "data-edit": "", novalidate: true, on: { submit: addTemplate } },
      h("h3", { class: "nhsuk-heading-s" }, "Add a template"),
      nameField("template-name"),
      bodyField("template-body"),
      h("button", { class: "nhsuk-button", type: "submit", id: "template-add", "data-testid": "template-add" }, "Add template"),
    ),
  );
  // Someone else's change to the list (another window, hubctl). Only the table is redrawn: the
  // add and edit forms keep what is typed, and a save still checks the version it was opened at.
  keepCurrent({
    view: "settings",
    scopes: ["templates"],
    redraw: () => loadTemplates({ quiet: true }),
    canRedraw: () => !byId("templates-list").contains(document.activeElement),
    container: byId("templates-list"),
  });
}

function nameField(id) {
  return h(
    "div",
    { class: "nhsuk-form-group" },
    h("label", { class: "nhsuk-label", for: id }, "Template name"),
    h("div", { class: "nhsuk-hint", id: `${id}-hint` }, "For example Ward round"),
    h("input", { class: "nhsuk-input nhsuk-input--width-30", id, type: "text", autocomplete: "off", "aria-describedby": `${id}-hint`, "data-testid": id }),
  );
}

function bodyField(id) {
  return h(
    "div",
    { class: "nhsuk-form-group" },
    h("label", { class: "nhsuk-label", for: id }, "Template text"),
    h("div", { class: "nhsuk-hint", id: `${id}-hint` }, "The text a new note starts with. Headings on their own lines, for example Plan:"),
    h("textarea", { class: "nhsuk-textarea app-note-text", id, rows: "6", "aria-describedby": `${id}-hint`, "data-testid": id }),
  );
}

export async function loadTemplates({ quiet = false } = {}) {
  try {
    templates.list = await api.noteTemplates(true);
  } catch (error) {
    if (!quiet) showApiError(error);
    return false;
  }
  renderList();
  return true;
}

function firstLine(body) {
  const line = String(body ?? "").split("\n").find((l) => l.trim()) ?? "";
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function renderList() {
  const container = byId("templates-list");
  if (!templates.list.length) {
    replaceChildren(container, h("p", { class: "nhsuk-body", "data-testid": "templates-none" }, "The ward has no note templates yet."));
    return;
  }
  const button = (id, label, ariaLabel, onClick) =>
    h(
      "button",
      { type: "button", class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small", id, "data-testid": id, "data-edit-control": "", "aria-label": ariaLabel, on: { click: onClick } },
      label,
    );
  replaceChildren(
    container,
    h(
      "table",
      { class: "nhsuk-table", "data-testid": "templates-table" },
      h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, "Note templates, by name"),
      h(
        "thead",
        { class: "nhsuk-table__head" },
        h("tr", { class: "nhsuk-table__row" }, ["Name", "Starts with", "Last changed", ""].map((l) => h("th", { class: "nhsuk-table__header", scope: "col" }, l))),
      ),
      h(
        "tbody",
        { class: "nhsuk-table__body" },
        templates.list.map((t) =>
          h(
            "tr",
            { class: "nhsuk-table__row", "data-testid": `template-${t.id}`, "data-retired": String(t.retired) },
            h("td", { class: "nhsuk-table__cell" }, h("span", { "data-testid": `template-${t.id}-name` }, t.name), t.retired ? [" ", tag("Retired", "grey", `template-${t.id}-retired`)] : null),
            h("td", { class: "nhsuk-table__cell", "data-testid": `template-${t.id}-first-line` }, firstLine(t.body)),
            h("td", { class: "nhsuk-table__cell" }, `${formatDateTime(t.updated_at)} by ${t.updated_by}`),
            h(
              "td",
              { class: "nhsuk-table__cell" },
              t.retired
                ? button(`template-${t.id}-restore`, "Restore", `Restore template ${t.name}`, () => restore(t))
                : h(
                    "div",
                    { class: "app-button-row" },
                    button(`template-${t.id}-edit`, "Edit", `Edit template ${t.name}`, () => openEditor(t.id)),
                    button(`template-${t.id}-retire`, "Retire", `Retire template ${t.name}`, () => retire(t)),
                  ),
            ),
          ),
        ),
      ),
    ),
  );
}

async function addTemplate(event) {
  event.preventDefault();
  clearErrors();
  const name = byId("template-name").value;
  const body = byId("template-body").value;
  const problems = [];
  if (!name.trim()) problems.push({ message: "Enter a name for the template", fieldId: "template-name" });
  if (!body.trim()) problems.push({ message: "Enter the template's text", fieldId: "template-body" });
  if (problems.length) {
    showErrors(problems);
    return;
  }
  let added;
  try {
    added = await api.addNoteTemplate(name, body);
  } catch (error) {
    showApiError(error, ADD_FIELDS);
    return;
  }
  byId("template-name").value = "";
  byId("template-body").value = "";
  await loadTemplates();
  notify(`Template added: ${added.name}`);
}

function openEditor(id) {
  clearErrors();
  const t = templates.list.find((x) => x.id === id);
  if (!t) return;
  templates.editing = { id: t.id, version: t.version };
  replaceChildren(
    byId("template-edit"),
    h(
      "form",
      { id: "template-edit-form", "data-testid": "template-edit-form", "data-edit": "", novalidate: true, on: { submit: saveEdit } },
      h("h3", { class: "nhsuk-heading-s", id: "template-edit-title", tabindex: "-1" }, `Edit template: ${t.name}`),
      nameField("template-edit-name"),
      bodyField("template-edit-body"),
      h("div", { id: "template-conflict", "data-testid": "template-conflict" }),
      h(
        "div",
        { class: "app-button-row" },
        h("button", { class: "nhsuk-button", type: "submit", id: "template-save", "data-testid": "template-save" }, "Save template"),
        h("button", { class: "nhsuk-button nhsuk-button--secondary", type: "button", id: "template-cancel", "data-testid": "template-cancel", on: { click: closeEditor } }, "Cancel"),
      ),
    ),
  );
  byId("template-edit-name").value = t.name;
  byId("template-edit-body").value = t.body;
  byId("template-edit-title").focus();
}

function closeEditor() {
  templates.editing = null;
  replaceChildren(byId("template-edit"));
  clearErrors();
}

async function saveEdit(event) {
  event.preventDefault();
  clearErrors();
  const editing = templates.editing;
  if (!editing) return;
  const name = byId("template-edit-name").value;
  const body = byId("template-edit-body").value;
  let saved;
  try {
    saved = await api.updateNoteTemplate(editing.id, editing.version, name, body);
  } catch (error) {
    if (error.code === "conflict") {
      showConflict(error);
      return;
    }
    showApiError(error, EDIT_FIELDS);
    return;
  }
  closeEditor();
  await loadTemplates();
  notify(`Template saved: ${saved.name}`);
}

/**
 * Someone changed the template since it was opened: the typing stays in the form, and nothing
 * is saved until the clinician has seen the other version and chosen to start again from it.
 */
function showConflict(error) {
  showErrors([{ message: error.message, fieldId: "template-edit-body" }]);
  replaceChildren(
    byId("template-conflict"),
    h(
      "div",
      { class: "nhsuk-warning-callout", "data-testid": "template-conflict-callout" },
      h("h4", { class: "nhsuk-warning-callout__label" }, "Changed by someone else"),
      h("p", {}, "Your text has not been saved. Copy anything you want to keep, then load the saved version and make your change again."),
      h(
        "button",
        {
          class: "nhsuk-button nhsuk-button--secondary",
          type: "button",
          id: "template-load-saved",
          "data-testid": "template-load-saved",
          on: {
            click: async () => {
              const id = templates.editing?.id;
              if (!(await loadTemplates()) || id === undefined) return;
              if (templates.list.some((t) => t.id === id && !t.retired)) openEditor(id);
              else {
                closeEditor();
                notify("That template has been retired meanwhile");
              }
            },
          },
        },
        "Load the saved version",
      ),
    ),
  );
}

async function restore(t) {
  clearErrors();
  let restored;
  try {
    restored = await api.restoreNoteTemplate(t.id);
  } catch (error) {
    showApiError(error);
    return;
  }
  await loadTemplates();
  notify(`Template restored: ${restored.name}. It is offered for new notes again.`);
}

async function retire(t) {
  clearErrors();
  let retired;
  try {
    retired = await api.retireNoteTemplate(t.id);
  } catch (error) {
    showApiError(error);
    return;
  }
  if (templates.editing?.id === t.id) closeEditor();
  await loadTemplates();
  notify(`Template retired: ${retired.name}. It is no longer offered for new notes.`);
}
