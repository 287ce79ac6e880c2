// Safe DOM building: data only ever reaches the page as text nodes or attribute values,
// never as HTML (patient names and task titles may contain markup).

/**
 * Creates an element. `attrs` keys: `class`, `text`, `dataset` (object), `on` (event → handler),
 * boolean attributes given as true/false, anything else set as an attribute.
 * Children may be nodes, strings (become text), arrays, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return el;
}

/** Replaces an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function tag(label, colour, testid) {
  const cls = colour ? `nhsuk-tag nhsuk-tag--${colour}` : "nhsuk-tag";
  return h("strong", { class: cls, "data-testid": testid }, label);
}

export function visuallyHidden(text) {
  return h("span", { class: "nhsuk-u-visually-hidden" }, text);
}
