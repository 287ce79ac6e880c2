// The ward board: patients by bed with their tasks, the add forms, and every task action.

import { api } from "./api.js";
import { h, byId, replaceChildren, tag, visuallyHidden } from "./dom.js";
import { showApiError, showErrors, clearErrors, notify } from "./errors.js";
import { compareBeds, composeDue, dueParts, formatDue, formatNhsNumber } from "./format.js";
import { state } from "./state.js";
import { keepCurrent } from "./live.js";
import { openNotesFor } from "./notes/index.js";
import { TASK_TYPES, boardSignature, confirmationView, noticeLines, pushOffer, syncStateView } from "./tasksync.js";
import { applyFind, overviewLinks, renderOverview } from "./ward-overview.js";

/**
 * What the board shows: it redraws when the backend says any of these changed (the background
 * SystmOne sync, other windows, hubctl), and every minute for the due, overdue and "last
 * confirmed" tags that change with time alone.
 */
const SCOPES = ["tasks", "patients", "task_sync"];

/** The SystmOne task type chosen per ward task, kept across redraws until sent. */
const chosenTaskType = new Map();

/** Bumped by every user-driven load, so a slower background fetch never overwrites a newer board. */
let boardGeneration = 0;
/** The signature of the board last drawn (see `boardSignature`). */
let drawnSignature = "";

/** The backend's field names (see `ApiError.field`) → the inputs of each form. */
const TASK_FORM_FIELDS = {
  patient_id: "task-patient",
  title: "task-title",
  assignee: "task-assignee",
  due: "task-due-date",
};
const PATIENT_FORM_FIELDS = { bed: "patient-bed", name: "patient-name", nhs_number: "patient-nhs" };
const editFormFields = (id) => ({ title: `edit-${id}-title`, assignee: `edit-${id}-assignee`, due: `edit-${id}-date` });

/** Redraws on the backend's events (see `liveRefresh`). */
let live = null;

export function initBoard() {
  byId("find-patient").addEventListener("input", () => applyFind());
  byId("find-patient").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      overviewLinks()[0]?.focus();
    } else if (event.key === "Escape") {
      event.target.value = "";
      applyFind();
    }
  });
  byId("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    readFilters();
    loadBoard();
  });
  byId("filter-status").addEventListener("change", () => {
    readFilters();
    loadBoard();
  });
  byId("filter-patient").addEventListener("change", () => {
    readFilters();
    loadBoard();
  });
  byId("filter-clear").addEventListener("click", () => {
    byId("filter-patient").value = "";
    byId("filter-assignee").value = "";
    byId("filter-status").value = "open";
    readFilters();
    loadBoard();
  });
  byId("task-form").addEventListener("submit", (event) => {
    event.preventDefault();
    addTask();
  });
  byId("patient-form").addEventListener("submit", (event) => {
    event.preventDefault();
    addPatient();
  });
  byId("task-due-today").addEventListener("click", () => {
    const today = state.board?.now?.slice(0, 10) ?? new Date().toISOString().slice(0, 10);
    byId("task-due-date").value = today;
    byId("task-due-time").focus();
  });
  live = keepCurrent({
    view: "board",
    scopes: SCOPES,
    redraw: liveRefresh,
    canRedraw: () => !state.editing && !selectOpen(),
    container: byId("board"),
    everyMinute: true,
  });
}

/** A list in the board has the keyboard: replacing it would close it under the user. */
function selectOpen() {
  const active = document.activeElement;
  return active?.tagName === "SELECT" && byId("board").contains(active);
}

function readFilters() {
  const patient = byId("filter-patient").value;
  const assignee = byId("filter-assignee").value.trim();
  state.filter = {
    patient_id: patient ? Number(patient) : null,
    assignee: assignee || null,
    status: byId("filter-status").value || "all",
  };
}

/**
 * The board for `filter`, plus `hidden_notices`: tasks the filter leaves out that carry a
 * SystmOne sync notice. A task the sync marked done (completed in SystmOne) leaves the Open
 * view at once, yet staff must still read what happened to it.
 */
async function fetchBoard(filter) {
  const board = await api.board(filter);
  board.hidden_notices = [];
  // The overview shows every patient's open tasks whatever the filters below it say; with the
  // default filters the board's own answer is exactly that.
  const wardWide = !filter.patient_id && !filter.assignee && filter.status === "open";
  board.ward_open_tasks = wardWide ? board.tasks : (await api.board({ patient_id: null, assignee: null, status: "open" })).tasks;
  let view;
  try {
    view = await api.taskSyncView();
  } catch {
    return board; // the board's own tasks still show their notices
  }
  const shown = new Set(board.tasks.map((t) => t.id));
  const hidden = new Set((view?.links ?? []).filter((l) => l.notice && !shown.has(l.task_id)).map((l) => l.task_id));
  if (hidden.size) {
    const all = await api.board({ patient_id: null, assignee: null, status: "all" });
    board.hidden_notices = all.tasks.filter((t) => hidden.has(t.id));
  }
  return board;
}

/** Fetches and draws the board. Returns false (after showing why) when the backend refused. */
export async function loadBoard() {
  const generation = ++boardGeneration;
  let board;
  try {
    board = await fetchBoard(state.filter);
  } catch (error) {
    showApiError(error);
    return false;
  }
  if (generation !== boardGeneration) return true; // a newer load is drawing
  state.board = board;
  renderBoard();
  return true;
}

/**
 * Redraws the board when what it shows changed (a task sent to or completed in SystmOne,
 * another user's change, the clock), keeping the keyboard focus where it was. Not run while a
 * task is being edited or a list in the board is open (see `keepCurrent`), so nothing typed or
 * chosen is thrown away.
 */
async function liveRefresh() {
  if (!state.board) return; // the view's own load draws the first board
  const generation = boardGeneration;
  let board;
  try {
    board = await fetchBoard(state.filter);
  } catch {
    return; // the next user action or change shows the error
  }
  if (generation !== boardGeneration) return; // a newer load drew meanwhile
  if (state.editing || state.view !== "board" || selectOpen()) return false; // drawn once they are done
  if (boardSignature(board) === drawnSignature) {
    state.board = board;
    return;
  }
  state.board = board;
  const focusedId = byId("board").contains(document.activeElement) ? document.activeElement.id : null;
  const focusedPatient = document.activeElement?.closest?.("[data-patient-id]")?.dataset.patientId;
  renderBoard();
  if (!focusedId) return;
  const again = document.getElementById(focusedId) ??
    (focusedPatient ? document.getElementById(`patient-${focusedPatient}-heading`) : null);
  again?.focus({ preventScroll: true });
}

/**
 * Detail on demand: shows one patient's tasks (their block further down the board) and puts the
 * keyboard on its heading. When the filters hide that patient, the board switches to them.
 */
export async function openPatientTasks(patient) {
  if (!document.getElementById(`patient-${patient.id}-heading`)) {
    byId("filter-patient").value = String(patient.id);
    readFilters();
    if (!(await loadBoard())) return;
  }
  const heading = document.getElementById(`patient-${patient.id}-heading`);
  heading?.scrollIntoView({ block: "start" });
  heading?.focus({ preventScroll: true });
}

/**
 * The patient the keyboard is on: a row of the overview, or anywhere in a patient's block.
 * Null when the focus is on neither.
 */
export function focusedPatientId() {
  const active = document.activeElement;
  const holder = active?.closest?.("[data-overview-patient], [data-patient-id]");
  if (!holder) return null;
  return Number(holder.dataset.overviewPatient ?? holder.dataset.patientId);
}

/**
 * Next (`step` 1) or previous (-1) patient: among the overview's rows, or among the patients'
 * blocks when the keyboard is in one of them, so the keys keep to the part of the board in use.
 */
export function movePatient(step) {
  const inBlocks = Boolean(document.activeElement?.closest?.("section[data-patient-id]"));
  const targets = inBlocks ? [...document.querySelectorAll("section[data-patient-id] h2")] : overviewLinks();
  if (!targets.length) return;
  const current = targets.findIndex((el) =>
    inBlocks ? el.closest("section")?.contains(document.activeElement) : el === document.activeElement);
  const next = current < 0 ? (step > 0 ? 0 : targets.length - 1) : Math.min(targets.length - 1, Math.max(0, current + step));
  targets[next].scrollIntoView({ block: "nearest" });
  targets[next].focus({ preventScroll: true });
}

/** "New task": the add form, for the patient the keyboard is on (if any). */
export function startNewTask() {
  const id = focusedPatientId();
  const patient = id ? state.board?.patients.find((p) => p.id === id) : null;
  if (patient) return startTaskFor(patient);
  const title = byId("task-title");
  title.scrollIntoView({ block: "center" });
  title.focus();
}

/** "Complete": the open task whose row has the keyboard. Returns false when there is none. */
export function completeFocusedTask() {
  const row = document.activeElement?.closest?.("tr[data-task-id]");
  const button = row ? document.getElementById(`task-${row.dataset.taskId}-complete`) : null;
  if (!button || button.disabled) return false;
  button.click();
  return true;
}

function patientLabel(patient) {
  return `${patient.bed}: ${patient.name}`;
}

function sortedPatients() {
  return [...(state.board?.patients ?? [])].sort((a, b) => compareBeds(a.bed, b.bed) || a.id - b.id);
}

function fillPatientSelect(select, patients, { blank }) {
  const previous = select.value;
  const options = [];
  if (blank) options.push(h("option", { value: "" }, blank));
  for (const p of patients) options.push(h("option", { value: String(p.id) }, patientLabel(p)));
  replaceChildren(select, options);
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

function fillStaffNames(tasks) {
  const names = new Set();
  for (const t of tasks) if (t.assignee) names.add(t.assignee);
  if (state.status?.current_user) names.add(state.status.current_user);
  replaceChildren(byId("staff-names"), [...names].sort().map((n) => h("option", { value: n })));
}

export function renderBoard() {
  const board = state.board;
  if (!board) return;
  const patients = sortedPatients();
  fillPatientSelect(byId("filter-patient"), patients, { blank: "All patients" });
  fillPatientSelect(byId("task-patient"), patients, { blank: patients.length ? null : "Add a patient first" });
  fillStaffNames(board.tasks);

  const overdue = board.tasks.filter((t) => t.overdue).length;
  const dueToday = board.tasks.filter((t) => t.due_today).length;
  byId("board-summary").textContent =
    `${patients.length} ${patients.length === 1 ? "patient" : "patients"}; ` +
    `${board.tasks.length} ${board.tasks.length === 1 ? "task" : "tasks"} shown` +
    (overdue ? `, ${overdue} overdue` : "") +
    (dueToday ? `, ${dueToday} due today` : "") +
    ".";

  drawnSignature = boardSignature(board);
  const syncByPatient = new Map((board.task_sync ?? []).map((p) => [p.patient_id, p]));
  renderOverview({ patients, openTasks: board.ward_open_tasks ?? [], syncByPatient, now: board.now, onOpen: openPatientTasks });
  const byPatient = new Map();
  for (const t of board.tasks) {
    if (!byPatient.has(t.patient_id)) byPatient.set(t.patient_id, []);
    byPatient.get(t.patient_id).push(t);
  }
  const noticesByPatient = new Map();
  for (const t of board.hidden_notices ?? []) {
    if (!noticesByPatient.has(t.patient_id)) noticesByPatient.set(t.patient_id, []);
    noticesByPatient.get(t.patient_id).push(t);
  }
  let shown = patients;
  if (state.filter.patient_id) shown = shown.filter((p) => p.id === state.filter.patient_id);
  if (state.filter.assignee) shown = shown.filter((p) => byPatient.has(p.id) || noticesByPatient.has(p.id));

  const container = byId("board");
  if (!patients.length) {
    replaceChildren(
      container,
      h("div", { class: "nhsuk-inset-text", "data-testid": "board-empty" }, visuallyHidden("Information: "),
        h("p", {}, "No patients on the ward list yet. Add a patient below.")),
    );
  } else if (!shown.length) {
    replaceChildren(container, h("p", { class: "nhsuk-body", "data-testid": "board-empty" }, "No tasks match these filters."));
  } else {
    replaceChildren(container, shown.map((p) =>
      patientSection(p, byPatient.get(p.id) ?? [], board.now, syncByPatient.get(p.id), noticesByPatient.get(p.id) ?? []),
    ));
  }
  applyEditControls();
}

function patientSection(patient, tasks, now, taskSync, hiddenNotices) {
  const headingId = `patient-${patient.id}-heading`;
  return h(
    "section",
    { class: "app-patient", "data-testid": `patient-${patient.id}`, "data-patient-id": patient.id, "aria-labelledby": headingId },
    h("h2", { class: "nhsuk-heading-m app-patient__heading", id: headingId, tabindex: "-1" }, patientLabel(patient)),
    h(
      "p",
      { class: "nhsuk-body-s app-patient__meta" },
      patient.nhs_number ? `NHS number ${formatNhsNumber(patient.nhs_number)}` : "No NHS number recorded",
    ),
    patient.nhs_number ? confirmationLine(patient, taskSync, now) : null,
    h(
      "button",
      {
        type: "button",
        class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small nhsuk-u-display-none-print",
        id: `patient-${patient.id}-add-task`,
        "data-testid": `patient-${patient.id}-add-task`,
        "data-edit-control": "",
        "aria-label": `Add a task for ${patient.bed}`,
        on: { click: () => startTaskFor(patient) },
      },
      "Add a task",
    ),
    h(
      "a",
      {
        class: "nhsuk-link app-patient__notes nhsuk-u-display-none-print",
        href: "#notes",
        "data-testid": `patient-${patient.id}-notes`,
        on: { click: () => openNotesFor(patient.id) },
      },
      `Case notes for ${patient.bed}`,
    ),
    tasks.length
      ? taskTable(patient, tasks, now)
      : h("p", { class: "nhsuk-body", "data-testid": `patient-${patient.id}-no-tasks` },
          state.filter.status === "open" ? "No open tasks." : "No tasks match these filters."),
    hiddenNotices.length ? hiddenNoticeList(patient, hiddenNotices) : null,
  );
}

/** Sync notices about this patient's tasks that the filters hide (see `fetchBoard`). */
function hiddenNoticeList(patient, tasks) {
  const statusText = { open: "open", done: "done", cancelled: "cancelled" };
  return h(
    "div",
    { class: "app-hidden-notices", "data-testid": `patient-${patient.id}-hidden-notices` },
    h("h3", { class: "nhsuk-heading-xs nhsuk-u-margin-bottom-2" }, "SystmOne sync messages about tasks not shown"),
    h(
      "ul",
      { class: "nhsuk-list" },
      tasks.map((t) =>
        h(
          "li",
          { "data-testid": `task-${t.id}-hidden-notice`, "data-task-id": t.id },
          h("p", { class: "nhsuk-body-s nhsuk-u-margin-bottom-1" },
            h("strong", {}, t.title), ` (${statusText[t.status] ?? t.status})`),
          syncNotice(t),
        ),
      ),
    ),
  );
}

/**
 * "Tasks last confirmed against SystmOne: …": when a full pull last showed that this
 * patient's board tasks match SystmOne. Marked out of date after 15 minutes, since the board
 * may then miss changes made in SystmOne.
 */
function confirmationLine(patient, taskSync, now) {
  const view = confirmationView(taskSync, now);
  const staleTag = view.stale
    ? tag(view.confirmedAt ? "Out of date" : "Not yet checked", "orange", `patient-${patient.id}-confirmed-stale`)
    : null;
  const details = [];
  if (view.today) details.push(`Tasks entered today last checked ${view.today}.`);
  if (view.checkWanted) details.push("A full check is due.");
  return h(
    "p",
    {
      class: `nhsuk-body-s app-sync-confirmed${view.stale ? " app-sync-confirmed--stale" : ""}`,
      "data-testid": `patient-${patient.id}-confirmed`,
      "data-stale": view.stale ? "true" : "false",
      "data-confirmed-at": view.confirmedAt ?? "",
    },
    "Tasks last confirmed against SystmOne: ",
    h("strong", { "data-testid": `patient-${patient.id}-confirmed-time` }, view.confirmed),
    staleTag ? [" ", staleTag] : ".",
    details.length ? h("span", { class: "app-sync-confirmed__details" }, ` ${details.join(" ")}`) : null,
  );
}

function taskTable(patient, tasks, now) {
  const linked = Boolean(patient.nhs_number);
  const rows = [];
  for (const t of tasks) {
    rows.push(taskRow(t, now, linked));
    if (state.editing?.id === t.id) rows.push(editRow(t));
  }
  return h(
    "table",
    { class: "nhsuk-table", "data-testid": `patient-${patient.id}-tasks` },
    h("caption", { class: "nhsuk-table__caption nhsuk-u-visually-hidden" }, `Tasks for ${patient.bed}`),
    h(
      "thead",
      { class: "nhsuk-table__head" },
      h(
        "tr",
        { class: "nhsuk-table__row" },
        ["Task", "Assigned to", "Due", "Status", "Actions"].map((label) =>
          h("th", { class: "nhsuk-table__header", scope: "col" }, label),
        ),
      ),
    ),
    h("tbody", { class: "nhsuk-table__body" }, rows),
  );
}

function statusTags(t, sync) {
  const tags = [];
  if (t.status === "done") tags.push(tag("Done", "green", `task-${t.id}-status`));
  else if (t.status === "cancelled") tags.push(tag("Cancelled", "grey", `task-${t.id}-status`));
  else tags.push(tag("Open", "blue", `task-${t.id}-status`));
  if (t.overdue) tags.push(tag("Overdue", "red", `task-${t.id}-overdue`));
  if (t.due_today) tags.push(tag("Due today", "orange", `task-${t.id}-due-today`));
  if (sync.label) tags.push(tag(sync.label, sync.colour, `task-${t.id}-sync`));
  return h("div", { class: "app-tags" }, tags);
}

function actionButton(t, action, label, { secondary = true, warning = false } = {}) {
  const id = `task-${t.id}-${action}`;
  const cls = ["nhsuk-button", "nhsuk-button--small", warning ? "nhsuk-button--warning" : secondary ? "nhsuk-button--secondary" : ""]
    .filter(Boolean)
    .join(" ");
  return h(
    "button",
    {
      type: "button",
      class: cls,
      id,
      "data-testid": id,
      "data-edit-control": "",
      "aria-label": `${label}: ${t.title}`,
      on: { click: () => taskAction(t, action) },
    },
    label,
  );
}

function taskRow(t, now, patientLinked) {
  const sync = syncStateView(t.sync, patientLinked);
  const actions =
    t.status === "open"
      ? [
          actionButton(t, "complete", "Complete", { secondary: false }),
          actionButton(t, "edit", "Edit"),
          actionButton(t, "reassign", "Reassign"),
          actionButton(t, "cancel", "Cancel task"),
        ]
      : [actionButton(t, "reopen", "Reopen")];
  const push = pushControls(t, patientLinked);
  return h(
    "tr",
    {
      class: `nhsuk-table__row${t.overdue ? " app-row--overdue" : ""}`,
      id: `task-${t.id}`,
      "data-testid": `task-${t.id}`,
      "data-task-id": t.id,
      "data-status": t.status,
      "data-version": t.version,
      "data-sync-state": sync.state,
      "data-task-uid": t.sync?.task_uid ?? null,
    },
    h("td", { class: "nhsuk-table__cell" }, h("span", { "data-testid": `task-${t.id}-title` }, t.title), syncNotice(t)),
    h("td", { class: "nhsuk-table__cell", "data-testid": `task-${t.id}-assignee` }, t.assignee ?? "Unassigned"),
    h("td", { class: "nhsuk-table__cell", "data-testid": `task-${t.id}-due` }, t.due ? formatDue(t.due, now) : "No due time"),
    h("td", { class: "nhsuk-table__cell" }, statusTags(t, sync)),
    h("td", { class: "nhsuk-table__cell" }, h("div", { class: "app-task-actions" }, actions), push),
  );
}

/** "Create in SystmOne" with the SystmOne task type, for a linked patient's ward-only task. */
function pushControls(t, patientLinked) {
  const offer = pushOffer(t, patientLinked);
  if (!offer) return null;
  const selectId = `task-${t.id}-push-type`;
  const chosen = chosenTaskType.get(t.id) ?? TASK_TYPES[0];
  return h(
    "div",
    { class: "app-push nhsuk-u-display-none-print" },
    h("label", { class: "nhsuk-label app-push__label", for: selectId }, "SystmOne task type"),
    h(
      "select",
      {
        class: "nhsuk-select app-push__type",
        id: selectId,
        "data-testid": selectId,
        "data-edit-control": "",
        on: { change: (event) => chosenTaskType.set(t.id, event.target.value) },
      },
      TASK_TYPES.map((type) => h("option", { value: type, selected: type === chosen }, type)),
    ),
    h(
      "button",
      {
        type: "button",
        class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
        id: `task-${t.id}-push`,
        "data-testid": `task-${t.id}-push`,
        "data-edit-control": "",
        "aria-label": `${offer.label}: ${t.title}`,
        on: { click: () => pushTask(t) },
      },
      offer.label,
    ),
  );
}

async function pushTask(t) {
  clearErrors();
  const taskType = chosenTaskType.get(t.id) ?? TASK_TYPES[0];
  try {
    await api.requestTaskPush(t.id, taskType);
  } catch (error) {
    showApiError(error);
    return;
  }
  chosenTaskType.delete(t.id);
  await loadBoard();
  notify(`Creating in SystmOne as "${taskType}": ${t.title}. The task's tag shows when it is there.`);
  // The button has gone: keep the keyboard on the same row.
  (document.getElementById(`task-${t.id}-complete`) ?? document.getElementById(`patient-${t.patient_id}-heading`))?.focus();
}

/** A message about the task's SystmOne sync (e.g. SystmOne refused it), shown until dismissed. */
function syncNotice(t) {
  const lines = noticeLines(t.sync?.notice);
  if (!lines.length) return null;
  return h(
    "div",
    { class: "app-sync-notice", "data-testid": `task-${t.id}-sync-notice`, role: "note" },
    h("p", { class: "nhsuk-body-s nhsuk-u-margin-bottom-1" }, h("strong", {}, "SystmOne sync:")),
    h(
      "ul",
      { class: "nhsuk-list nhsuk-body-s app-sync-notice__lines", "data-testid": `task-${t.id}-sync-notice-lines` },
      lines.map((line) => h("li", {}, line)),
    ),
    h(
      "button",
      {
        type: "button",
        class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
        id: `task-${t.id}-dismiss-notice`,
        "data-edit-control": "",
        "aria-label": `Dismiss the SystmOne message about: ${t.title}`,
        on: {
          click: async () => {
            clearErrors();
            try {
              await api.dismissTaskSyncNotice(t.id);
            } catch (error) {
              showApiError(error);
              return;
            }
            await loadBoard();
            (document.getElementById(`task-${t.id}-complete`) ?? document.getElementById(`patient-${t.patient_id}-heading`))?.focus();
          },
        },
      },
      "Dismiss",
    ),
  );
}

function editRow(t) {
  const editing = state.editing;
  const prefix = `edit-${t.id}`;
  const field = (key, label, attrs = {}) =>
    h(
      "div",
      { class: "nhsuk-form-group" },
      h("label", { class: "nhsuk-label", for: `${prefix}-${key}` }, label),
      h("input", {
        class: `nhsuk-input ${attrs.width ?? ""}`.trim(),
        id: `${prefix}-${key}`,
        "data-testid": `${prefix}-${key}`,
        type: "text",
        autocomplete: "off",
        placeholder: attrs.placeholder,
        inputmode: attrs.inputmode,
        list: attrs.list,
        value: editing.values[key],
        "data-edit-control": "",
        on: { input: (event) => (editing.values[key] = event.target.value) },
      }),
    );
  const form = h(
    "form",
    {
      class: "app-edit-form",
      id: `${prefix}-form`,
      "data-testid": `${prefix}-form`,
      novalidate: true,
      "aria-label": `Edit task: ${t.title}`,
      on: {
        submit: (event) => {
          event.preventDefault();
          saveEdit(t);
        },
      },
    },
    field("title", "Task"),
    field("assignee", "Assigned to (empty for nobody)", { width: "nhsuk-input--width-20", list: "staff-names" }),
    field("date", "Due date", { width: "nhsuk-input--width-10", placeholder: "YYYY-MM-DD", inputmode: "numeric" }),
    field("time", "Due time", { width: "nhsuk-input--width-5", placeholder: "HH:MM", inputmode: "numeric" }),
    h(
      "div",
      { class: "nhsuk-form-group app-task-actions" },
      h("button", { type: "submit", class: "nhsuk-button nhsuk-button--small", id: `task-${t.id}-save`, "data-testid": `task-${t.id}-save`, "data-edit-control": "" }, "Save changes"),
      h(
        "button",
        {
          type: "button",
          class: "nhsuk-button nhsuk-button--small nhsuk-button--secondary",
          id: `task-${t.id}-edit-cancel`,
          "data-testid": `task-${t.id}-edit-cancel`,
          on: { click: () => closeEditor(t.id) },
        },
        "Discard changes",
      ),
    ),
  );
  return h(
    "tr",
    { class: "nhsuk-table__row app-edit-row", "data-testid": `task-${t.id}-editor` },
    h("td", { class: "nhsuk-table__cell", colspan: "5" }, form),
  );
}

function openEditor(t, focusKey) {
  const due = dueParts(t.due);
  const original = { title: t.title, assignee: t.assignee ?? "", date: due.date, time: due.time };
  state.editing = { id: t.id, version: t.version, original, values: { ...original } };
  clearErrors();
  renderBoard();
  const input = document.getElementById(`edit-${t.id}-${focusKey}`);
  if (input) {
    input.focus();
    input.select?.();
  }
}

function closeEditor(id) {
  state.editing = null;
  clearErrors();
  renderBoard();
  document.getElementById(`task-${id}-edit`)?.focus();
  live?.retry(); // a change that arrived while the editor was open
}

async function saveEdit(t) {
  const editing = state.editing;
  if (!editing || editing.id !== t.id) return;
  clearErrors();
  const { values, original } = editing;
  const fields = editFormFields(t.id);
  const input = { version: editing.version };
  if (values.title !== original.title) input.title = values.title;
  if (values.assignee.trim() !== original.assignee) input.assignee = values.assignee;
  if (values.date.trim() !== original.date || values.time.trim() !== original.time) {
    const due = composeDue(values.date, values.time);
    if (due.error) {
      showErrors([{ message: due.error, fieldId: `edit-${t.id}-date` }]);
      return;
    }
    input.due = due.value;
  }
  try {
    const saved = await api.editTask(t.id, input);
    state.editing = null;
    await loadBoard();
    notify(`Task saved: ${saved.title}`);
    document.getElementById(`task-${t.id}-edit`)?.focus();
  } catch (error) {
    if (error.code === "conflict") {
      // Someone else changed the task: show their copy, keep what this user typed, and
      // let them save again against the new version.
      await refreshKeepingEditor(t.id);
    }
    showApiError(error, fields);
  }
}

async function refreshKeepingEditor(id) {
  const editing = state.editing;
  try {
    state.board = await api.board(state.filter);
  } catch {
    return;
  }
  const fresh = state.board.tasks.find((x) => x.id === id);
  if (editing && fresh && fresh.status === "open") {
    const due = dueParts(fresh.due);
    editing.version = fresh.version;
    editing.original = { title: fresh.title, assignee: fresh.assignee ?? "", date: due.date, time: due.time };
  } else {
    state.editing = null;
  }
  renderBoard();
}

const STATUS_FOR = { complete: "done", cancel: "cancelled", reopen: "open" };
const DONE_TEXT = { complete: "Task completed", cancel: "Task cancelled", reopen: "Task reopened" };

async function taskAction(t, action) {
  if (action === "edit") return openEditor(t, "title");
  if (action === "reassign") return openEditor(t, "assignee");
  clearErrors();
  try {
    await api.setTaskStatus(t.id, STATUS_FOR[action], t.version);
  } catch (error) {
    if (error.code === "conflict") await loadBoard();
    showApiError(error);
    return;
  }
  if (state.editing?.id === t.id) state.editing = null;
  await loadBoard();
  notify(`${DONE_TEXT[action]}: ${t.title}`);
  // The row may have left the board (filtered out): fall back to its patient's heading.
  const next = document.getElementById(`task-${t.id}-${action === "reopen" ? "complete" : "reopen"}`) ??
    document.getElementById(`patient-${t.patient_id}-heading`);
  next?.focus();
}

/** Jumps to the add-task form with this patient chosen. */
function startTaskFor(patient) {
  byId("task-patient").value = String(patient.id);
  const title = byId("task-title");
  title.scrollIntoView({ block: "center" });
  title.focus();
}

async function addTask() {
  clearErrors();
  const patient = byId("task-patient").value;
  if (!patient) {
    showErrors([{ message: "Add a patient before adding tasks for them", fieldId: "patient-bed" }]);
    return;
  }
  const due = composeDue(byId("task-due-date").value, byId("task-due-time").value);
  if (due.error) {
    showErrors([{ message: due.error, fieldId: "task-due-date" }]);
    return;
  }
  const input = {
    patient_id: Number(patient),
    title: byId("task-title").value,
    assignee: byId("task-assignee").value,
    due: due.value,
  };
  let task;
  try {
    task = await api.addTask(input);
  } catch (error) {
    showApiError(error, TASK_FORM_FIELDS);
    return;
  }
  for (const id of ["task-title", "task-assignee", "task-due-date", "task-due-time"]) byId(id).value = "";
  await loadBoard();
  const p = state.board?.patients.find((x) => x.id === task.patient_id);
  notify(`Task added${p ? ` for ${p.bed}` : ""}: ${task.title}`);
  byId("task-title").focus();
}

async function addPatient() {
  clearErrors();
  const input = {
    bed: byId("patient-bed").value,
    name: byId("patient-name").value,
    nhs_number: byId("patient-nhs").value,
  };
  let patient;
  try {
    patient = await api.addPatient(input);
  } catch (error) {
    showApiError(error, PATIENT_FORM_FIELDS);
    return;
  }
  for (const id of ["patient-bed", "patient-name", "patient-nhs"]) byId(id).value = "";
  await loadBoard();
  byId("task-patient").value = String(patient.id);
  notify(`Patient added: ${patient.bed}`);
  byId("patient-bed").focus();
}

/** Disables every control that would change data while the database is read-only. */
export function applyEditControls() {
  const disabled = state.readOnly;
  for (const el of document.querySelectorAll("form[data-edit] input, form[data-edit] select, form[data-edit] button, [data-edit-control]")) {
    el.disabled = disabled;
  }
}
