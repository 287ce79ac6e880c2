// Keyboard shortcuts for the ward board's frequent actions (listed on screen in the board's
// "Keyboard shortcuts" details). Single keys without modifiers, so they never fire while someone
// types: ignored in text boxes, lists and editable text, while the idle lock is up, and with
// Ctrl, Alt or Meta held (the browser's and screen readers' own keys).

import { completeFocusedTask, movePatient, startNewTask } from "./board.js";
import { isLocked } from "./idle-lock.js";
import { state } from "./state.js";

/** Where typing goes: a key pressed there is text, never a command. */
function typingTarget(el) {
  if (!el) return false;
  if (el.isContentEditable) return true;
  if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
  if (el.tagName !== "INPUT") return false;
  // Checkboxes, radios and buttons take no text: the keys stay shortcuts there.
  return !["checkbox", "radio", "button", "submit", "reset"].includes(el.type);
}

/** The arrows move between patients only where the keyboard already is on one (never the page's scrolling). */
function onPatient() {
  return Boolean(document.activeElement?.closest?.("[data-overview-patient], section[data-patient-id]"));
}

function findPatient() {
  const input = document.getElementById("find-patient");
  input.scrollIntoView({ block: "nearest" });
  input.focus();
  input.select();
}

/** The action for a key on the board, or null when the key is not a shortcut there. */
function boardAction(event) {
  switch (event.key) {
    case "n":
    case "N":
      return startNewTask;
    case "f":
    case "F":
    case "/":
      return findPatient;
    case "j":
    case "J":
      return () => movePatient(1);
    case "k":
    case "K":
      return () => movePatient(-1);
    case "ArrowDown":
      return onPatient() ? () => movePatient(1) : null;
    case "ArrowUp":
      return onPatient() ? () => movePatient(-1) : null;
    case "c":
    case "C":
      return document.activeElement?.closest?.("tr[data-task-id]") ? completeFocusedTask : null;
    default:
      return null;
  }
}

function onKeyDown(event) {
  if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) return;
  if (typingTarget(event.target) || isLocked() || state.editing) return;
  if (event.key === "b" || event.key === "B") {
    event.preventDefault();
    if (location.hash !== "#board") location.hash = "#board";
    return;
  }
  if (state.view !== "board") return;
  const action = boardAction(event);
  if (!action) return;
  event.preventDefault();
  action();
}

export function initShortcuts() {
  document.addEventListener("keydown", onKeyDown);
}
