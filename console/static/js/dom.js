// Small DOM helpers: elements built from data (never from HTML strings), and notices.

/** Builds an element: `h("a", {href: "#/"}, "text", child)`; `on*` attributes are listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A message box: kind is "error", "info" or "warn". */
export function message(kind, text) {
  return h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Shows a passing notice in the corner for a few seconds. */
export function notice(kind, text) {
  const box = document.getElementById("notice");
  const shown = message(kind, text);
  box.replaceChildren(shown);
  setTimeout(() => shown.remove(), 6000);
}

/** Formats a fraction as a percentage, or a dash. */
export function percent(used, total) {
  if (!total) return "–";
  return `${Math.round((100 * used) / total)}%`;
}

/** A timestamp for people. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}
