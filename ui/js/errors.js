// The NHS.UK error pattern: one error summary at the top of the page linking to each
// field, and the same message beside the field. Form values are never touched here.

import { h, byId, replaceChildren, visuallyHidden } from "./dom.js";
import { fieldIdFor, sentence } from "./format.js";

/**
 * Shows `problems` ([{message, fieldId?, href?}]) in the summary and beside their fields,
 * then moves focus to the summary so screen readers announce it.
 */
export function showErrors(problems, { focus = true } = {}) {
  clearErrors();
  clearNotice(); // an old "Task added" beside a new error would mislead
  const summary = byId("error-summary");
  const items = problems.map((p) => {
    const target = p.fieldId ? `#${p.fieldId}` : p.href;
    const text = sentence(p.message);
    if (p.fieldId) markField(p.fieldId, text);
    if (!target) return h("li", {}, text);
    return h(
      "li",
      {},
      h("a", {
        href: target,
        text,
        on: {
          click: (event) => {
            if (!p.fieldId) return; // links to a view, e.g. #settings: let the router handle it
            event.preventDefault();
            const field = document.getElementById(p.fieldId);
            if (field) field.focus();
          },
        },
      }),
    );
  });
  replaceChildren(byId("error-summary-list"), items);
  summary.hidden = false;
  if (focus) {
    summary.focus();
    summary.scrollIntoView({ block: "start" });
  }
}

/**
 * Shows one backend error, beside the input `fields` maps its `field` to (`fields`: the backend's
 * snake_case field name → this form's input id). "Choose who you are" links to Settings.
 */
export function showApiError(error, fields = {}) {
  if (error?.code === "no_current_user" || error?.code === "unattributed") {
    showErrors([{ message: error.message, href: "#settings" }]);
    return;
  }
  showErrors([{ message: error.message, fieldId: fieldIdFor(error, fields) }]);
}

function markField(fieldId, text) {
  const input = document.getElementById(fieldId);
  if (!input) return;
  const group = input.closest(".nhsuk-form-group");
  if (!group) return;
  group.classList.add("nhsuk-form-group--error");
  const errorId = `${fieldId}-error`;
  const message = h("span", { class: "nhsuk-error-message", id: errorId, "data-testid": errorId }, visuallyHidden("Error: "), text);
  // The message goes after the label and hint, before the input (or the checkboxes holding it),
  // as in the NHS.UK pattern.
  let anchor = input;
  while (anchor.parentElement && anchor.parentElement !== group) anchor = anchor.parentElement;
  group.insertBefore(message, anchor);
  input.classList.add(input.tagName === "SELECT" ? "nhsuk-select--error" : "nhsuk-input--error");
  const describedBy = (input.getAttribute("aria-describedby") ?? "").split(/\s+/).filter(Boolean);
  if (!describedBy.includes(errorId)) describedBy.push(errorId);
  input.setAttribute("aria-describedby", describedBy.join(" "));
  input.setAttribute("aria-invalid", "true");
}

/** Removes every error message (summary and fields); leaves the values typed. */
export function clearErrors() {
  const summary = document.getElementById("error-summary");
  if (summary) summary.hidden = true;
  const list = document.getElementById("error-summary-list");
  if (list) list.replaceChildren();
  for (const message of document.querySelectorAll(".nhsuk-error-message")) {
    const input = message.id ? document.getElementById(message.id.replace(/-error$/, "")) : null;
    if (input) {
      const rest = (input.getAttribute("aria-describedby") ?? "").split(/\s+/).filter((id) => id && id !== message.id);
      if (rest.length) input.setAttribute("aria-describedby", rest.join(" "));
      else input.removeAttribute("aria-describedby");
      input.removeAttribute("aria-invalid");
      input.classList.remove("nhsuk-input--error", "nhsuk-select--error");
    }
    message.remove();
  }
  for (const group of document.querySelectorAll(".nhsuk-form-group--error")) {
    group.classList.remove("nhsuk-form-group--error");
  }
}

/** A short confirmation in the polite live region ("Task added"). */
export function notify(text) {
  byId("notice").textContent = text;
}

export function clearNotice() {
  byId("notice").textContent = "";
}
