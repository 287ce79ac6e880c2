// "Follow SystmOne": which patient is open in SystmOne right now, with links to their notes and
// tasks. SystmOne only says so when asked, so this asks every few seconds, but only while the
// box is ticked, the lookup view is on screen, the window is visible and SystmOne is connected
// (a `hub:systmone` event starts and stops it as the connection comes and goes).

import { api, systmOneConnected } from "../api.js";
import { h, byId, replaceChildren } from "../dom.js";
import { onSystmOne } from "../events.js";
import { state } from "../state.js";
import { openNotesFor } from "../notes/index.js";
import { lookUpNhsNumber } from "./search.js";

const FOLLOW_POLL_MS = 3_000;

const follow = {
  timer: null,
  /** The last answer, kept while SystmOne is busy. */
  view: null,
};

/** The "Follow SystmOne" card. */
export function followCard() {
  return h(
    "div",
    { class: "nhsuk-card app-follow", id: "follow-card" },
    h(
      "div",
      { class: "nhsuk-card__content" },
      h("h2", { class: "nhsuk-card__heading nhsuk-heading-s" }, "Follow SystmOne"),
      h(
        "div",
        { class: "nhsuk-checkboxes nhsuk-checkboxes--small" },
        h(
          "div",
          { class: "nhsuk-checkboxes__item" },
          h("input", {
            class: "nhsuk-checkboxes__input",
            id: "follow-toggle",
            type: "checkbox",
            "data-testid": "follow-toggle",
            on: { change: followToggled },
          }),
          h("label", { class: "nhsuk-label nhsuk-checkboxes__label", for: "follow-toggle" }, "Show the patient open in SystmOne"),
        ),
      ),
      h("div", { id: "follow-panel", "data-testid": "follow-panel", "aria-live": "polite" }),
    ),
  );
}

/** Starts or stops following with the view, the window's visibility and the connection. */
export function initFollow() {
  document.addEventListener("visibilitychange", () => scheduleFollow());
  onSystmOne((status) => scheduleFollow(status));
}

function followToggled() {
  if (!byId("follow-toggle").checked) {
    follow.view = null;
    replaceChildren(byId("follow-panel"));
  }
  scheduleFollow();
}

/** Asks SystmOne only while the toggle is on, the window is visible, the view open and SystmOne connected. */
export function scheduleFollow(status = state.systmone) {
  const on = document.getElementById("follow-toggle")?.checked && !document.hidden && state.view === "lookup";
  const connected = systmOneConnected(status);
  const wanted = on && connected;
  if (wanted && !follow.timer) {
    follow.timer = setInterval(pollFollow, FOLLOW_POLL_MS);
    pollFollow();
  } else if (!wanted && follow.timer) {
    clearInterval(follow.timer);
    follow.timer = null;
  }
  if (on && !connected) renderFollow(null, "SystmOne is not connected: following resumes when it is.");
}

async function pollFollow() {
  if (state.view !== "lookup" || document.hidden || !byId("follow-toggle").checked || !systmOneConnected(state.systmone)) {
    scheduleFollow();
    return;
  }
  try {
    const view = await api.followSystmOne();
    if (view.skipped_busy) {
      renderFollow(follow.view, "SystmOne is busy with queued work: checking again shortly.");
      return;
    }
    follow.view = view;
    renderFollow(view, null);
  } catch (error) {
    renderFollow(null, error.message);
  }
}

function renderFollow(view, note) {
  if (!byId("follow-toggle").checked) return;
  const panel = byId("follow-panel");
  const parts = [];
  if (view && !view.nhs_number) {
    parts.push(h("p", { "data-testid": "follow-none" }, "No patient is open in SystmOne."));
  } else if (view) {
    const p = view.patient;
    parts.push(
      h(
        "p",
        { "data-testid": "follow-patient", "data-nhs": view.nhs_number },
        "Open in SystmOne: NHS number ",
        h("strong", {}, view.nhs_number_formatted),
        p ? ` – ${p.bed}: ${p.name} on this ward.` : " – not on this ward's list.",
      ),
    );
    if (p) {
      parts.push(
        h(
          "div",
          { class: "app-task-actions" },
          h("a", { class: "nhsuk-link", href: "#notes", "data-testid": "follow-notes", on: { click: () => openNotesFor(p.id) } }, `Case notes for ${p.bed}`),
          h(
            "a",
            {
              class: "nhsuk-link",
              href: "#board",
              "data-testid": "follow-tasks",
              on: { click: () => (state.filter = { ...state.filter, patient_id: p.id }) },
            },
            `Tasks for ${p.bed}`,
          ),
        ),
      );
    } else {
      parts.push(
        h(
          "button",
          {
            type: "button",
            class: "nhsuk-button nhsuk-button--secondary nhsuk-button--small",
            id: "follow-lookup",
            "data-testid": "follow-lookup",
            on: { click: () => lookUpNhsNumber(view.nhs_number_formatted) },
          },
          "Look up this patient",
        ),
      );
    }
  }
  if (note) parts.push(h("p", { class: "nhsuk-body-s", "data-testid": "follow-note" }, note));
  replaceChildren(panel, parts);
}
