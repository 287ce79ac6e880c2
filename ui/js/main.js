// Inpatient Hub window: routing between the views, and the status strip (kept current from the
// backend's `hub:systmone` and `hub:changed` "settings" events; see events.js).

import { api, READ_ONLY_EVENT } from "./api.js";
import { byId, h, replaceChildren, tag } from "./dom.js";
import { describeSystmOne } from "./format.js";
import { clearErrors, clearNotice, showApiError } from "./errors.js";
import { state } from "./state.js";
import { initBoard, loadBoard, applyEditControls } from "./board.js";
import { initHandover, loadHandover } from "./handover.js";
import { initAudit, loadAudit } from "./audit.js";
import { initSettings, loadSettings, renderSettings } from "./settings.js";
import { initLookup, loadLookup } from "./lookup/index.js";
import { initNotes, loadNotes } from "./notes/index.js";
import { initOutbox, loadOutbox } from "./outbox.js";
import { onChanged, onSystmOne } from "./events.js";
import { initIdleLock } from "./idle-lock.js";
import { initShortcuts } from "./shortcuts.js";

const VIEWS = {
  board: { title: "Ward board", load: loadBoard },
  handover: { title: "Handover", load: loadHandover },
  audit: { title: "Audit", load: loadAudit },
  settings: { title: "Settings", load: loadSettings },
  lookup: { title: "Patient lookup", load: loadLookup },
  notes: { title: "Case notes", load: loadNotes },
  outbox: { title: "Outbox", load: loadOutbox },
};

async function refreshStatus({ quiet = false } = {}) {
  try {
    state.status = await api.status();
  } catch (error) {
    if (!quiet) showApiError(error);
    return false;
  }
  applyStatus();
  return true;
}

function applyStatus() {
  const status = state.status;
  const user = status.current_user;
  byId("current-user").textContent = user ?? "not known";
  byId("acting-identity").textContent = describeIdentity(status.identity);
  byId("acting-identity").title = status.identity?.summary ?? "";
  byId("no-user-notice").hidden = Boolean(user);

  state.readOnly = Boolean(status.read_only) || Boolean(state.board?.read_only) || state.readOnlySeen;
  byId("read-only-callout").hidden = !state.readOnly;
  byId("database-state").textContent = state.readOnly ? "Database: read-only" : "";
  byId("status-strip").classList.toggle("app-status-strip--read-only", state.readOnly);

  applyAuditWarning(status.audit_warning);
  applyIntegrityWarning(status.integrity_warning);
  applySystmOne();
  applyEditControls();
}

/**
 * The last database check (daily in the background, or `hubctl check`) found the file damaged:
 * a banner on every view, shown like the audit warning; the backend's text says what to do.
 */
function applyIntegrityWarning(warning) {
  const shown = typeof warning === "string" && warning.length > 0;
  byId("integrity-warning").hidden = !shown;
  byId("integrity-warning-text").textContent = shown ? warning : "";
}

/**
 * The backend's tamper check failed (a protective trigger dropped, the newest audit row not
 * matching its hash): a banner on every view. The text comes from the backend and already says
 * to tell IT and run `hubctl audit verify`.
 */
function applyAuditWarning(warning) {
  const shown = typeof warning === "string" && warning.length > 0;
  byId("audit-warning").hidden = !shown;
  byId("audit-warning-text").textContent = shown ? warning : "";
}

/**
 * Who is acting, in one line for the strip: the SystmOne user and role (or why there is none)
 * and the OS account. Nothing here was typed by the user except the display label.
 */
function describeIdentity(identity) {
  if (!identity) return "";
  const parts = [];
  const s1 = identity.systmone_user;
  const role = identity.role ?? {};
  if (s1) {
    const roleText =
      role.kind === "verified" ? `${role.systmone_role}, ${role.profile}` :
      role.kind === "unmapped" ? `${role.systmone_role}: not in the role map, least privilege` :
      "no role reported";
    parts.push(`SystmOne: ${s1.name} (${roleText})`);
  } else {
    parts.push("SystmOne: not connected, role not verified");
  }
  parts.push(`computer account: ${identity.os_account ?? "unknown"}`);
  if (identity.display_label) parts.push(`label: ${identity.display_label}`);
  return parts.join(" · ");
}

/** Asks SystmOne afresh who is logged on, then redraws the strip (and Settings). */
async function checkIdentity() {
  try {
    await api.recheckIdentity();
  } catch (error) {
    showApiError(error);
    return;
  }
  await refreshStatus();
  if (state.view === "settings") renderSettings();
}

/** Demo mode: unmistakable on every view (banner, title) so no one mistakes the simulator for SystmOne. */
function applyDemo() {
  const demo = state.status?.demo_mode === true || state.systmone?.demo_mode === true;
  byId("demo-banner").hidden = !demo;
  document.body.classList.toggle("app-demo", demo);
}

/** Asks for the SystmOne link's state once at start; `hub:systmone` tells every change after. */
async function refreshSystmOne() {
  const heard = systmOneHeard;
  let status = null;
  try {
    status = await api.systmoneStatus();
  } catch {
    // a backend without the command simply shows none
  }
  if (heard === systmOneHeard) systmOneChanged(status); // else an event brought a newer state meanwhile
}

/** How many `hub:systmone` events have arrived. */
let systmOneHeard = 0;

function systmOneEvent(status) {
  systmOneHeard += 1;
  systmOneChanged(status);
}

/** The strip and the demo banner only: the edit controls do not depend on SystmOne. */
function systmOneChanged(status) {
  state.systmone = status ?? null;
  applySystmOne();
}

/** The current user (or the database's state) changed elsewhere: another window, hubctl. */
async function settingsChanged() {
  if (!(await refreshStatus({ quiet: true }))) return;
  if (state.view === "settings") renderSettings();
}

function applySystmOne() {
  applyDemo(); // either answer may switch it on
  const el = byId("systmone-status");
  const described = describeSystmOne(state.systmone);
  el.hidden = !described;
  if (!described) {
    el.replaceChildren();
    return;
  }
  el.dataset.state = state.systmone?.state?.kind ?? "";
  // The detail may be cut short on screen to keep the strip one line (the whole text stays in
  // the page for screen readers, and in the title).
  replaceChildren(el, "SystmOne: ", tag(described.label, described.colour, "systmone-state"), " ",
    h("span", { class: "app-status-strip__detail", "data-testid": "systmone-detail" }, described.detail));
  el.title = `SystmOne: ${described.label}. ${described.detail}`;
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
  // The strip first, so views hearing the same event already see the new state.
  onSystmOne(systmOneEvent);
  onChanged(["settings"], settingsChanged);
  initBoard();
  initHandover();
  initAudit();
  initSettings({ onUserChanged });
  initLookup();
  initNotes();
  initOutbox();
  byId("check-identity").addEventListener("click", checkIdentity);
  initShortcuts();
  initIdleLock({
    unlocked: async () => {
      await refreshStatus();
      if (state.view === "settings") renderSettings();
    },
  });
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
  const first = viewFromHash() ?? "board";
  await show(first, { focus: false });
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  showApiError({ code: "error", message: `The window could not start: ${error?.message ?? error}` });
});
