// Run a command on one machine or a selection: output streamed per machine, exit codes, and
// each machine's refusal shown as the server gave it.

import { allPages } from "../api.js";
import { h, message } from "../dom.js";

export async function commandsPage(view, { socket }) {
  const machines = (await allPages("/machines")).sort((a, b) => a.name.localeCompare(b.name));
  const chosen = new Set(JSON.parse(sessionStorage.getItem("fg.selection") || "[]"));
  sessionStorage.removeItem("fg.selection");
  const filter = h("input", { id: "pick-filter", type: "search", placeholder: "filter machines" });
  const pick = h("div", { class: "machine-pick", id: "machine-pick", role: "group", "aria-label": "Machines" });
  function drawPick() {
    const needle = filter.value.trim().toLowerCase();
    pick.replaceChildren(...machines
      .filter((m) => !needle || m.name.toLowerCase().includes(needle) || (m.hostname || "").toLowerCase().includes(needle))
      .map((m) => h("label", { class: "inline" },
        h("input", {
          type: "checkbox", value: m.id, checked: chosen.has(m.id),
          onchange: (e) => { if (e.target.checked) chosen.add(m.id); else chosen.delete(m.id); },
        }),
        ` ${m.name} `, h("span", { class: `status ${m.status}` }, m.status))));
  }
  filter.addEventListener("input", drawPick);
  drawPick();
  const command = h("input", { id: "command", required: true, size: 60, placeholder: "uptime", autocomplete: "off" });
  const timeout = h("input", { id: "timeout", type: "number", min: 1, max: 3600, value: 60 });
  const results = h("div", { id: "results", "aria-live": "polite" });
  const problems = h("div");
  const byRequest = new Map();
  const byCommand = new Map();

  function resultBox(machine) {
    const state = h("span", { class: "state" }, "sending…");
    const output = h("pre", { class: "output" });
    const box = h("section", { class: "panel result", dataset: { machine: machine.id } },
      h("h2", {}, machine.name, " · ", state), output);
    return { box, state, output };
  }
  const form = h("form", {
    onsubmit: (event) => {
      event.preventDefault();
      problems.replaceChildren();
      if (!chosen.size) {
        problems.append(message("error", "Choose at least one machine."));
        return;
      }
      results.replaceChildren();
      byRequest.clear();
      byCommand.clear();
      const batch = Date.now();
      for (const machine of machines.filter((m) => chosen.has(m.id))) {
        const result = resultBox(machine);
        results.append(result.box);
        const requestId = `run-${batch}-${machine.id}`;
        byRequest.set(requestId, result);
        socket.send({
          type: "execute_command", machineId: machine.id, command: command.value,
          timeoutSecs: Number(timeout.value) || 60, requestId,
        });
      }
    },
  },
  h("div", { class: "toolbar" }, h("label", { for: "command" }, "Command", command),
    h("label", { for: "timeout" }, "Timeout (s)", timeout), h("button", { type: "submit", id: "run" }, "Run")));
  view.append(h("h1", {}, "Commands"), problems,
    h("div", { class: "toolbar" }, h("label", { for: "pick-filter" }, "Machines", filter)), pick, form, results);

  const offs = [
    socket.on("command_started", (event) => {
      const result = byRequest.get(event.requestId);
      if (!result) return;
      byCommand.set(event.commandId, result);
      result.state.textContent = "running";
    }),
    socket.on("command_output", (event) => {
      const result = byCommand.get(event.commandId) || byRequest.get(event.requestId);
      if (!result) return;
      result.output.append(event.output);
      if (event.completed) {
        result.state.textContent = event.status === "timed_out"
          ? "timed out"
          : `exit code ${event.exitCode}`;
        result.box.dataset.exitCode = String(event.exitCode ?? "");
      }
    }),
    socket.on("error", (event) => {
      const result = byRequest.get(event.requestId);
      if (!result) return;
      result.state.textContent = "refused";
      result.box.dataset.refused = event.code;
      result.output.replaceWith(message("error", `${event.message} (${event.code})`));
    }),
  ];
  command.focus();
  return () => offs.forEach((off) => off());
}
