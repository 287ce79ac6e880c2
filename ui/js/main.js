// Inpatient Hub window: routing between the four views and the status strip.

import { api, READ_ONLY_EVENT } from "./api.js";
import { byId, replaceChildren, tag } from "./dom.js";
import { describeSystmOne } from "./format.js";
import { clearErrors, clearNotice, showApiError } from "./errors.js";
import { state } from "./state.js";
import { initBoard, loadBoard, applyEditControls } from "./board.js";
import { initHandover, loadHandover } from "./handover.js";
import { initAudit, loadAudit } from "./audit.js";
import { initSettings, loadSettings, renderSettings } from "./settings.js";
import { initLookup, loadLookup } from "./lookup.js";
import { initNotes, loadNotes } from "./notes.js";
import { initOutbox, loadOutbox } from "./outbox.js";

const VIEWS = {
  board: { title: "Ward board", load: loadBoard },
  handover: { title: "Handover", load: loadHandover },
  audit: { title: "Audit", load: loadAudit },
  settings: { title: "Settings", load: loadSettings },
  lookup: { title: "Patient lookup", load: loadLookup },
  notes: { title: "Case notes", load: loadNotes },
  outbox: { title: "Outbox", load: loadOutbox },
};

/** How often the board refreshes itself so overdue flags and other users' changes appear. */
const REFRESH_MS = 60_000;
/** How often the status strip asks for the SystmOne link's state (a local read, no SystmOne traffic). */
const SYSTMONE_REFRESH_MS = 5_000;

async function refreshStatus() {
  try {
    state.status = await api.status();
  } catch (error) {
    showApiError(error);
    return false;
  }
  applyStatus();
  return true;
}

function applyStatus() {
  const status = state.status;
  const user = status.current_user;
  byId("current-user").textContent = user ?? "not chosen";
  byId("no-user-notice").hidden = Boolean(user) || state.view === "settings";

  state.readOnly = Boolean(status.read_only) || Boolean(state.board?.read_only) || state.readOnlySeen;
  byId("read-only-callout").hidden = !state.readOnly;
  byId("database-state").textContent = state.readOnly ? "Database: read-only" : "";
  byId("status-strip").classList.toggle("app-status-strip--read-only", state.readOnly);

  // Demo mode: unmistakable on every view (banner, title) so no one mistakes the simulator for SystmOne.
  const demo = status.demo_mode === true || state.systmone?.demo_mode === true;
  byId("demo-banner").hidden = !demo;
  document.body.classList.toggle("app-demo", demo);

  applySystmOne();
  applyEditControls();
}

/** Asks for the SystmOne link's state; a backend without the command simply shows none. */
async function refreshSystmOne() {
  try {
    state.systmone = await api.systmoneStatus();
  } catch {
    state.systmone = null;
  }
  if (state.status) applyStatus(); // also the demo banner, which either answer may switch on
  else applySystmOne();
}

function applySystmOne() {
  const el = byId("systmone-status");
  const described = describeSystmOne(state.systmone);
  el.hidden = !described;
  if (!described) {
    el.replaceChildren();
    return;
  }
  el.dataset.state = state.systmone?.state?.kind ?? "";
  replaceChildren(el, "SystmOne: ", tag(described.label, described.colour, "systmone-state"), ` ${described.detail}`);
}

function viewFromHash() {
  const name = location.hash.replace(/^#/, "");
  return Object.hasOwn(VIEWS, name) ? name : null;
}

async function show(name, { focus = true } = {}) {
  state.view = name;
  clearErrors();
  clearNotice();
  for (const key of Object.keys(VIEWS)) {
    byId(`view-${key}`).hidden = key !== name;
    const item = document.querySelector(`.nhsuk-header__navigation-item[data-view="${key}"]`);
    const link = byId(`nav-${key}`);
    item?.classList.toggle("nhsuk-header__navigation-item--current", key === name);
    if (key === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const demo = state.status?.demo_mode === true || state.systmone?.demo_mode === true ? "DEMO – " : "";
  document.title = `${demo}${VIEWS[name].title} – Inpatient Hub`;
  if (state.status) applyStatus();
  await VIEWS[name].load();
  if (state.status) applyStatus();
  if (focus) byId(`${name}-title`).focus();
}

async function onUserChanged() {
  await refreshStatus();
  renderSettings();
}

async function start() {
  document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
  initBoard();
  initHandover();
  initAudit();
  initSettings({ onUserChanged });
  initLookup();
  initNotes();
  initOutbox();
  window.addEventListener(READ_ONLY_EVENT, () => {
    state.readOnlySeen = true;
    if (state.status) applyStatus();
  });
  window.addEventListener("hashchange", () => {
    const name = viewFromHash();
    if (name) show(name);
  });
  await refreshStatus();
  await refreshSystmOne();
  const first = viewFromHash() ?? (state.status && !state.status.current_user ? "settings" : "board");
  await show(first, { focus: false });
  document.body.dataset.ready = "true";

  setInterval(() => {
    if (!document.hidden) refreshSystmOne();
  }, SYSTMONE_REFRESH_MS);

  setInterval(async () => {
    // Never redraw under someone editing a task or moving through the board by keyboard:
    // replacing the rows would throw away their place.
    const inBoard = document.activeElement && byId("board").contains(document.activeElement);
    if (state.view !== "board" || state.editing || inBoard || document.hidden) return;
    await refreshStatus();
    await loadBoard();
    applyStatus();
  }, REFRESH_MS);
}

start().catch((error) => {
  showApiError({ code: "error", message: `The window could not start: ${error?.message ?? error}` });
});
