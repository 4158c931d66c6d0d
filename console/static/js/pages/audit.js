// The audit log (administrators): filters, cursor pagination, export as JSON.

import { api } from "../api.js";
import { h, message, when } from "../dom.js";

const EXPORT_LIMIT = 100000;

export async function auditPage(view) {
  const fields = {
    actor: h("input", { id: "f-actor" }),
    action: h("input", { id: "f-action", placeholder: "terminal.open" }),
    machine: h("input", { id: "f-machine", placeholder: "machine id" }),
    since: h("input", { id: "f-since", type: "datetime-local" }),
    until: h("input", { id: "f-until", type: "datetime-local" }),
  };
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "secondary", id: "audit-more", hidden: true }, "Load more");
  const problems = h("div");
  let cursor = null;

  function query(extra = {}) {
    const params = new URLSearchParams();
    for (const [name, input] of Object.entries(fields)) {
      if (!input.value) continue;
      params.set(name, input.type === "datetime-local" ? new Date(input.value).toISOString() : input.value.trim());
    }
    for (const [name, value] of Object.entries(extra)) if (value) params.set(name, value);
    return params.toString();
  }
  async function load(reset) {
    problems.replaceChildren();
    if (reset) {
      rows.replaceChildren();
      cursor = null;
    }
    try {
      const page = await api("GET", `/audit?${query({ limit: 100, cursor })}`);
      rows.append(...page.items.map((e) => h("tr", {},
        h("td", {}, when(e.at)), h("td", {}, e.actor), h("td", {}, e.action),
        h("td", {}, e.machineId || ""), h("td", {}, h("code", {}, JSON.stringify(e.detail))), h("td", {}, e.sourceIp || ""))));
      cursor = page.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      problems.append(message("error", err.message));
    }
  }
  async function exportJson() {
    const entries = [];
    let next = null;
    do {
      const page = await api("GET", `/audit?${query({ limit: 1000, cursor: next })}`);
      entries.push(...page.items);
      next = page.nextCursor;
    } while (next && entries.length < EXPORT_LIMIT);
    const blob = new Blob([JSON.stringify(entries, null, 2)], { type: "application/json" });
    const link = h("a", { href: URL.createObjectURL(blob), download: "fleetgate-audit.json" });
    document.body.append(link);
    link.click();
    link.remove();
  }
  more.addEventListener("click", () => load(false));
  const form = h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); load(true); } },
    ...Object.entries(fields).map(([name, input]) => h("label", { for: input.id }, name, input)),
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", class: "secondary", id: "audit-export", onclick: exportJson }, "Export JSON"));
  view.append(h("h1", {}, "Audit"), form, problems,
    h("table", { id: "audit" }, h("thead", {}, h("tr", {},
      ["When", "Actor", "Action", "Machine", "Detail", "Source"].map((n) => h("th", { scope: "col" }, n)))), rows),
    more);
  await load(true);
}
