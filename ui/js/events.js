// What the backend tells the window without being asked, so views redraw when something changed
// instead of asking every few seconds:
//
// - `hub:changed` `{scopes: [...]}`: data changed, in any of "tasks", "patients", "notes",
//   "outbox", "templates", "settings", "audit", "task_sync"; "all" when another process (another
//   window, hubctl) changed the database and the backend cannot say what.
// - `hub:systmone`: the `systmone_status` answer, whenever the connection or its queue changes.
//
// Plus the one clock the window keeps: a tick at the start of every minute, for what changes with
// time alone (due and overdue tags, "last confirmed 15 min ago").

const CHANGED = "hub:changed";
const SYSTMONE = "hub:systmone";
const MINUTE_MS = 60_000;

const changedHandlers = new Set();
const systmoneHandlers = new Set();
const minuteHandlers = new Set();
let listening = false;
let clock = null;

/** Runs a handler so that one view's failure never stops the others hearing the event. */
function safely(handler, ...args) {
  try {
    const result = handler(...args);
    if (result && typeof result.catch === "function") result.catch((error) => console.error("event handler failed", error));
  } catch (error) {
    console.error("event handler failed", error);
  }
}

function listen() {
  if (listening) return;
  listening = true;
  const events = globalThis.window?.__TAURI__?.event;
  if (!events || typeof events.listen !== "function") return; // outside the app: nothing will come
  Promise.all([
    events.listen(CHANGED, (event) => changed(event?.payload)),
    events.listen(SYSTMONE, (event) => {
      for (const handler of [...systmoneHandlers]) safely(handler, event?.payload ?? null);
    }),
  ]).catch((error) => console.error("cannot listen to the backend's events", error));
}

/** The scopes a `hub:changed` payload names; a payload without any counts as "all". */
export function scopesOf(payload) {
  const scopes = Array.isArray(payload?.scopes) ? payload.scopes.filter((s) => typeof s === "string") : [];
  return scopes.length ? scopes : ["all"];
}

/** Of the scopes a handler asked for, those a payload touches (every one of them for "all"). */
export function matchingScopes(wanted, payload) {
  const scopes = scopesOf(payload);
  if (scopes.includes("all")) return [...wanted];
  return scopes.filter((s) => wanted.has(s));
}

function changed(payload) {
  for (const entry of [...changedHandlers]) {
    const hit = matchingScopes(entry.wanted, payload);
    if (hit.length) safely(entry.handler, hit);
  }
}

/**
 * Calls `handler(scopes)` whenever the backend says data in any of `scopes` changed (`scopes`
 * passed are those of the handler's that changed). Returns a function that stops it.
 */
export function onChanged(scopes, handler) {
  const entry = { wanted: new Set(scopes), handler };
  changedHandlers.add(entry);
  listen();
  return () => changedHandlers.delete(entry);
}

/** Calls `handler(status)` with every new SystmOne status. Returns a function that stops it. */
export function onSystmOne(handler) {
  systmoneHandlers.add(handler);
  listen();
  return () => systmoneHandlers.delete(handler);
}

/** Calls `handler()` at the start of every minute. Returns a function that stops it. */
export function onMinute(handler) {
  minuteHandlers.add(handler);
  if (!clock) {
    const tick = () => {
      for (const h of [...minuteHandlers]) safely(h);
    };
    // First at the next whole minute, so "Due 14:30" turns overdue at 14:30, then every minute.
    clock = setTimeout(() => {
      tick();
      clock = setInterval(tick, MINUTE_MS);
    }, MINUTE_MS - (Date.now() % MINUTE_MS) + 50);
  }
  return () => minuteHandlers.delete(handler);
}
