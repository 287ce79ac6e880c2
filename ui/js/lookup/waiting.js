// "Searching SystmOne… waiting 4 s so far": shown while a lookup waits for SystmOne, with where the
// request stands in the paced queue. The queue comes from the backend's `hub:systmone` events (the
// status strip keeps the last in `state.systmone`); the seconds count is a local clock that asks
// the backend nothing.

import { h, byId, replaceChildren } from "../dom.js";
import { onSystmOne } from "../events.js";
import { describeWait } from "../nhs.js";
import { state } from "../state.js";

/** How often the seconds waited are redrawn. */
const TICK_MS = 1_000;

/** Shows the waiting box until the returned function is called. */
export function showWaiting() {
  const box = byId("lookup-waiting");
  const started = Date.now();
  let stopped = false;
  const draw = () => {
    if (stopped) return;
    const waited = Math.floor((Date.now() - started) / 1000);
    const queue = state.systmone?.queue;
    const parts = [`Searching SystmOne… waiting ${waited} s so far.`];
    if (queue) {
      const interactive = (queue.items ?? []).filter((i) => i.lane === "interactive");
      if (interactive.length) {
        const last = interactive[interactive.length - 1];
        parts.push(
          `Your search is number ${interactive.length} in the queue (${queue.background} background request${queue.background === 1 ? "" : "s"} wait behind it); ` +
            `expected to be sent in ${describeWait(last.eta_ms)}.`,
        );
      } else if (queue.in_flight) {
        parts.push("Sent: waiting for SystmOne's answer.");
      }
      parts.push("SystmOne takes one request a second from this PC.");
    }
    box.dataset.waitedSeconds = String(waited);
    replaceChildren(box, h("p", { "data-testid": "lookup-waiting-text" }, parts.join(" ")));
    box.hidden = false;
  };
  draw();
  // state.systmone is updated by the status strip's handler, registered first.
  const stopListening = onSystmOne(draw);
  const timer = setInterval(draw, TICK_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
    stopListening();
    box.hidden = true;
    replaceChildren(box);
  };
}
