// The NHS.UK error pattern: one error summary at the top of the page linking to each
// field, and the same message beside the field. Form values are never touched here.

import { h, byId, replaceChildren, visuallyHidden } from "./dom.js";
import { errorTopic, sentence } from "./format.js";

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

/** Shows one backend error, beside the field the form maps its topic to (`fields`: topic → input id). */
export function showApiError(error, fields = {}) {
  const topic = errorTopic(error);
  if (topic === "user") {
    showErrors([{ message: error.message, href: "#settings" }]);
    return;
  }
  const fieldId = topic ? fields[topic] : undefined;
  showErrors([{ message: error.message, fieldId }]);
}

function markField(fieldId, text) {
  const input = document.getElementById(fieldId);
  if (!input) return;
  const group = input.closest(".nhsuk-form-group");
  if (!group) return;
  group.classList.add("nhsuk-form-group--error");
  const errorId = `${fieldId}-error`;
  const message = h("span", { class: "nhsuk-error-message", id: errorId, "data-testid": errorId }, visuallyHidden("Error: "), text);
  // The message goes after the label and hint, before the input, as in the NHS.UK pattern.
  group.insertBefore(message, input);
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
