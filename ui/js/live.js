// Keeping a view current from the backend's change events (events.js), under the rules every view
// shares: redraw only the view on screen (the others read afresh when they are opened), never
// while the window is hidden, and never under someone's keyboard focus or unsaved typing. A change
// that could not be drawn then is drawn as soon as it can: when the focus leaves the part that
// would be replaced, or the window is shown again.

import { onChanged, onMinute } from "./events.js";
import { state } from "./state.js";

/**
 * `view`: the view's name (`state.view`). `scopes`: the `hub:changed` scopes it shows.
 * `redraw(scopes)`: fetches and draws; `scopes` is the set that changed since the last redraw
 * ("clock" for the minute tick); it returns false when it found it could not draw after all
 * (someone started typing while it fetched), and the change waits as if `canRedraw` had said no. `canRedraw()`: false while a redraw would throw away someone's
 * place or typing. `container`: where focus sits when `canRedraw` says no (a pending change is
 * drawn when focus leaves it). `everyMinute`: also redraw at every minute (time-dependent tags).
 *
 * Redraws never overlap: changes arriving during one cause exactly one more after it.
 * Returns `{refresh(scopes)}` to ask for a redraw under the same rules, and `{retry()}` to draw
 * a change that had to wait, e.g. once an editor closes.
 */
export function keepCurrent({ view, scopes, redraw, canRedraw = () => true, container = null, everyMinute = false }) {
  let waiting = new Set();
  let running = null;

  function allowed() {
    return state.view === view && !document.hidden && canRedraw();
  }

  async function run() {
    try {
      while (waiting.size && allowed()) {
        const now = waiting;
        waiting = new Set();
        if ((await redraw(now)) === false) {
          for (const s of now) waiting.add(s);
          break;
        }
      }
    } catch (error) {
      console.error(`the ${view} view could not redraw`, error);
    }
    // Anything still waiting (focus moved in meanwhile) is drawn by the triggers below.
  }

  function refresh(changed = ["all"]) {
    // Off screen: the view's own load reads everything afresh when it is opened.
    if (state.view !== view) {
      waiting.clear();
      return Promise.resolve();
    }
    for (const s of changed) waiting.add(s);
    if (running) return running;
    if (!allowed()) return Promise.resolve();
    const current = run().finally(() => {
      if (running === current) running = null;
    });
    running = current;
    return current;
  }

  const retry = () => {
    if (waiting.size && !running) refresh([]);
  };

  onChanged(scopes, refresh);
  if (everyMinute) onMinute(() => refresh(["clock"]));
  document.addEventListener("visibilitychange", retry);
  // After focusout the focus has not moved yet: look once it has.
  container?.addEventListener("focusout", () => setTimeout(retry, 0));
  return { refresh, retry };
}
