// The fleet: every machine the user may see, live status from subscribe_machines, CPU and
// memory at a glance, search and filter; a virtualised list (only the rows in view exist),
// so 10,000 machines scroll smoothly.

import { allPages } from "../api.js";
import { h, message, percent } from "../dom.js";

const ROW_HEIGHT = 40;
const REFRESH_MS = 60000;

export async function fleetPage(view, { user, socket }) {
  const canOperate = user.role !== "viewer";
  const machines = new Map();
  const selected = new Set();
  const search = h("input", { id: "fleet-search", type: "search", placeholder: "name, hostname, IP or region" });
  const status = h("select", { id: "fleet-status" },
    h("option", { value: "" }, "All"), h("option", { value: "online" }, "Online"),
    h("option", { value: "offline" }, "Offline"));
  const count = h("span", { class: "count", id: "fleet-count", "aria-live": "polite" });
  const runSelected = canOperate
    ? h("button", {
      type: "button", id: "run-selected", disabled: true,
      onclick: () => { location.hash = "#/commands"; sessionStorage.setItem("fg.selection", JSON.stringify([...selected])); },
    }, "Run command on selected")
    : null;
  const spacer = h("div", { class: "fleet-spacer" });
  const scroll = h("div", { class: "fleet-scroll", id: "fleet-list", role: "list", tabindex: "0", "aria-label": "Machines" }, spacer);
  const head = h("div", { class: "fleet-head", "aria-hidden": "true" },
    h("span"), h("span", {}, "Status"), h("span", {}, "Name"), h("span", { class: "wide" }, "Hostname"),
    h("span", { class: "wide" }, "IP"), h("span", { class: "wide" }, "Region"), h("span", {}, "CPU"),
    h("span", { class: "wide" }, "Memory"), h("span"));
  const problems = h("div");
  view.append(h("h1", {}, "Fleet"), problems,
    h("div", { class: "toolbar" },
      h("label", { for: "fleet-search" }, "Search", search),
      h("label", { for: "fleet-status" }, "Status", status), runSelected, count),
    head, scroll);

  let visible = [];
  function filtered() {
    const needle = search.value.trim().toLowerCase();
    return [...machines.values()]
      .filter((m) => !status.value || m.status === status.value)
      .filter((m) => !needle || [m.name, m.hostname, m.ip, m.region].some((f) => (f || "").toLowerCase().includes(needle)))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  function row(machine, index) {
    const metrics = machine.latestMetrics;
    return h("div", {
      class: "fleet-row", role: "listitem", dataset: { machine: machine.id, status: machine.status },
      style: `top:${index * ROW_HEIGHT}px`,
    },
    canOperate
      ? h("input", {
        type: "checkbox", "aria-label": `Select ${machine.name}`, checked: selected.has(machine.id),
        onchange: (e) => { if (e.target.checked) selected.add(machine.id); else selected.delete(machine.id); updateCount(); },
      })
      : h("span"),
    h("span", { class: `status ${machine.status}` }, machine.status),
    h("a", { href: `#/machines/${machine.id}` }, machine.name),
    h("span", { class: "wide" }, machine.hostname || ""),
    h("span", { class: "wide" }, machine.ip || ""),
    h("span", { class: "wide" }, machine.region || ""),
    h("span", {}, metrics ? `${Math.round(metrics.cpu)}%` : "–"),
    h("span", { class: "wide" }, metrics ? percent(metrics.ramUsed, metrics.ramTotal) : "–"),
    canOperate && machine.status === "online"
      ? h("a", { class: "button secondary", href: `#/terminal/${machine.id}` }, "Terminal")
      : h("span"));
  }
  function draw() {
    const first = Math.max(0, Math.floor(scroll.scrollTop / ROW_HEIGHT) - 5);
    const last = Math.min(visible.length, first + Math.ceil(scroll.clientHeight / ROW_HEIGHT) + 10);
    spacer.style.height = `${visible.length * ROW_HEIGHT}px`;
    const rows = [];
    for (let i = first; i < last; i += 1) rows.push(row(visible[i], i));
    scroll.replaceChildren(spacer, ...rows);
  }
  function updateCount() {
    const online = [...machines.values()].filter((m) => m.status === "online").length;
    count.textContent = `${visible.length} shown · ${online} of ${machines.size} online`
      + (canOperate ? ` · ${selected.size} selected` : "");
    if (runSelected) runSelected.disabled = selected.size === 0;
  }
  let pending = false;
  function refresh() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      visible = filtered();
      draw();
      updateCount();
    });
  }
  search.addEventListener("input", refresh);
  status.addEventListener("change", refresh);
  scroll.addEventListener("scroll", () => draw());
  window.addEventListener("resize", draw);

  async function load() {
    try {
      for (const machine of await allPages("/machines")) {
        const known = machines.get(machine.id);
        // Live status wins over a list that may be a moment older.
        machines.set(machine.id, known ? { ...machine, status: known.status, region: known.region } : machine);
      }
      refresh();
    } catch (err) {
      problems.replaceChildren(message("error", err.message));
    }
  }
  const stopStatus = socket.on("machine_status", (event) => {
    const known = machines.get(event.machineId) || { id: event.machineId, name: event.hostname };
    machines.set(event.machineId, {
      ...known, status: event.status, lastSeen: event.lastSeen, region: event.region ?? null,
      hostname: known.hostname || event.hostname,
    });
    refresh();
  });
  const stopReconnected = socket.on("reconnected", () => socket.send({ type: "subscribe_machines" }));
  await load();
  socket.send({ type: "subscribe_machines" });
  const timer = setInterval(load, REFRESH_MS);
  return () => {
    stopStatus();
    stopReconnected();
    clearInterval(timer);
    window.removeEventListener("resize", draw);
  };
}
