// The idle lock: after the ward's idle period (`status.idle_lock_minutes`, never off) the window
// covers everything, patient data included, until someone at the PC checks in. Unlocking asks
// the backend afresh who is logged on to SystmOne (and the OS account): if the SystmOne user
// changed while the window was locked, the lock screen says so before the window opens again, so
// nobody carries on unknowingly under someone else's name.

import { api } from "./api.js";
import { byId } from "./dom.js";
import { state } from "./state.js";

/** How often the idle time is checked. */
const CHECK_EVERY_MS = 15_000;
/** The backend never allows less than 1 minute; a missing status uses its default. */
const DEFAULT_MINUTES = 10;

let lastInput = Date.now();
let locked = false;
/** Who was acting when the window locked: `{actor, systmone}`. */
let before = null;
let onUnlocked = async () => {};

const who = (identity) => identity?.systmone_user?.name ?? null;

function idleLimitMs() {
  const minutes = Number(state.status?.idle_lock_minutes) || DEFAULT_MINUTES;
  return Math.max(1, minutes) * 60_000;
}

export function isLocked() {
  return locked;
}

/** Covers the window now (also used by the idle timer). */
export function lock() {
  if (locked) return;
  locked = true;
  before = { actor: state.status?.current_user ?? null, systmone: who(state.status?.identity) };
  byId("idle-lock-was").textContent = before.actor ? `Last used by ${before.actor}.` : "";
  byId("idle-lock-message").textContent = "";
  // Hidden from assistive technology and the keyboard too, not just covered.
  byId("app-content").inert = true;
  byId("idle-lock").hidden = false;
  byId("idle-lock-title").focus();
}

async function unlock() {
  const button = byId("idle-unlock");
  button.disabled = true;
  let identity;
  try {
    identity = await api.recheckIdentity();
  } catch (error) {
    byId("idle-lock-message").textContent = `Who is here could not be checked: ${error.message}`;
    button.disabled = false;
    return;
  }
  button.disabled = false;
  const now = who(identity);
  const message = byId("idle-lock-message");
  if (before && before.systmone !== now && !message.dataset.acknowledged) {
    // Said on screen before the window opens: changes from now on are recorded under `now`.
    message.textContent = now
      ? `SystmOne is now logged on as ${now}${before.systmone ? ` (it was ${before.systmone})` : ""}. Changes from now on are recorded under ${now}. Select unlock again to carry on.`
      : `Nobody is logged on to SystmOne now${before.systmone ? ` (it was ${before.systmone})` : ""}. Changes are recorded under the computer account ${identity.os_account ?? "(unknown)"}. Select unlock again to carry on.`;
    message.dataset.acknowledged = "true";
    before = { actor: identity.actor, systmone: now };
    return;
  }
  delete message.dataset.acknowledged;
  locked = false;
  byId("idle-lock").hidden = true;
  byId("app-content").inert = false;
  lastInput = Date.now();
  await onUnlocked(identity);
}

/** Starts watching for input; `unlocked` runs after each unlock (e.g. to refresh the status). */
export function initIdleLock({ unlocked }) {
  onUnlocked = unlocked;
  const seen = () => {
    if (!locked) lastInput = Date.now();
  };
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart", "input"]) {
    window.addEventListener(type, seen, { capture: true, passive: true });
  }
  byId("idle-unlock").addEventListener("click", unlock);
  setInterval(() => {
    if (!locked && Date.now() - lastInput >= idleLimitMs()) lock();
  }, CHECK_EVERY_MS);
}
