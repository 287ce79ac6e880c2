// Patient lookup: find a patient in SystmOne (search.js), check the match side by side with the
// ward patient and link them (review.js), refresh linked patients' demographics (linked.js), and
// follow the patient open in SystmOne (follow.js). This file lays the view out and keeps it
// current.

import { h, byId, replaceChildren } from "../dom.js";
import { keepCurrent } from "../live.js";
import { followCard, initFollow, scheduleFollow } from "./follow.js";
import { renderLinked } from "./linked.js";
import { searchForm } from "./search.js";

export function initLookup() {
  replaceChildren(
    byId("lookup"),
    h("p", { class: "nhsuk-body" }, "Find a patient in SystmOne, check the details against the ward patient, then link them."),
    followCard(),
    searchForm(),
    h("div", { id: "lookup-waiting", "data-testid": "lookup-waiting", class: "nhsuk-inset-text app-waiting", role: "status", hidden: true }),
    h("div", { id: "lookup-outcome", "data-testid": "lookup-outcome" }),
    h("div", { id: "lookup-match", "data-testid": "lookup-match" }),
    h("div", { id: "lookup-review", "data-testid": "lookup-review" }),
    h("h2", { class: "nhsuk-heading-m" }, "Patients linked to SystmOne"),
    h("div", { id: "lookup-linked", "data-testid": "lookup-linked" }),
  );
  initFollow();
  // Patients added or linked elsewhere join the linked list; the search form, results and an
  // open review are left as they are.
  keepCurrent({
    view: "lookup",
    scopes: ["patients"],
    redraw: () => renderLinked({ quiet: true }),
    canRedraw: () => !byId("lookup-linked").contains(document.activeElement),
    container: byId("lookup-linked"),
  });
}

export async function loadLookup() {
  await renderLinked();
  scheduleFollow();
  return true;
}
