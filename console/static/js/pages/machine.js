// One machine: status, CPU / memory / disk charts over the last hour, day or week, open ports,
// recent commands and terminal sessions (live ones of other users to watch, with `observe`).

import uPlot from "../../vendor/uPlot.esm.js";
import { api } from "../api.js";
import { h, message, when } from "../dom.js";

const RANGES = { hour: 3600, day: 86400, week: 604800 };

/** Draws percentage charts of `points` over [since, until] (seconds) into `charts`, one per
 * [title, value] (all laid out first, so each is drawn at its final width). */
function drawCharts(charts, points, period, series) {
  const boxes = series.map(([title]) =>
    h("figure", { class: "chart", "aria-label": `${title} chart` }, h("figcaption", {}, title)));
  charts.replaceChildren(...boxes);
  series.forEach(([title, value], i) => chart(boxes[i], title, points, value, period));
}

function chart(box, title, points, value, [since, until]) {
  const xs = points.map((p) => Date.parse(p.at) / 1000);
  const ys = points.map(value);
  // eslint-disable-next-line no-new
  new uPlot({
    width: Math.max(240, box.clientWidth - 16), height: 180,
    scales: { x: { time: true, range: [since, until] }, y: { range: [0, 100] } },
    series: [{}, { label: `${title} %`, stroke: "#0b5cad", width: 2, fill: "rgba(11,92,173,0.08)" }],
    axes: [{}, { values: (_, ticks) => ticks.map((t) => `${t}%`) }],
  }, [xs, ys], box);
}

function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length }, "None."))));
}

export async function machinePage(view, { user, params }) {
  const [id] = params;
  const machine = await api("GET", `/machines/${id}`);
  const canOperate = user.role !== "viewer";
  const range = h("select", { id: "range" }, Object.keys(RANGES).map((r) => h("option", { value: r }, `Last ${r}`)));
  const charts = h("div", { class: "charts", id: "charts" });
  const actions = canOperate
    ? h("div", { class: "toolbar" },
      machine.status === "online" ? h("a", { class: "button", href: `#/terminal/${id}` }, "Open terminal") : null,
      h("button", {
        type: "button", class: "secondary",
        onclick: () => { sessionStorage.setItem("fg.selection", JSON.stringify([id])); location.hash = "#/commands"; },
      }, "Run a command"))
    : null;
  const os = [machine.os?.distro, machine.os?.release, machine.os?.kernel].filter(Boolean).join(" ");
  view.append(
    h("h1", {}, machine.name),
    h("p", {}, h("span", { class: `status ${machine.status}` }, machine.status),
      ` · ${machine.hostname || "–"} · ${machine.ip || "–"} · ${os || "unknown OS"}`,
      machine.region ? ` · region ${machine.region}` : "", ` · last seen ${when(machine.lastSeen)}`),
    actions,
    h("h2", {}, "Metrics"),
    h("div", { class: "toolbar" }, h("label", { for: "range" }, "Period", range)),
    charts,
  );
  async function showMetrics() {
    const until = Date.now() / 1000;
    const period = [until - RANGES[range.value], until];
    const since = new Date(period[0] * 1000).toISOString();
    try {
      const { points } = await api("GET", `/machines/${id}/metrics?since=${encodeURIComponent(since)}`);
      charts.replaceChildren();
      if (!points.length) {
        charts.append(message("info", "No metrics in this period."));
        return;
      }
      drawCharts(charts, points, period, [
        ["CPU", (p) => p.cpu],
        ["Memory", (p) => (p.ramTotal ? (100 * p.ramUsed) / p.ramTotal : null)],
        ["Disk", (p) => (p.diskTotal ? (100 * p.diskUsed) / p.diskTotal : null)],
      ]);
    } catch (err) {
      charts.replaceChildren(message("error", err.message));
    }
  }
  range.addEventListener("change", showMetrics);
  await showMetrics();

  const sections = await Promise.allSettled([
    api("GET", `/machines/${id}/ports`),
    api("GET", `/commands?machine=${id}&limit=20`),
    api("GET", `/sessions?machine=${id}&limit=20`),
    api("GET", `/sessions?machine=${id}&active=true&limit=50`),
  ]);
  const [ports, commands, sessions, live] = sections.map((s) => (s.status === "fulfilled" ? s.value.items : s.reason));
  const shown = (items, draw) => (Array.isArray(items) ? draw(items) : message("error", items.message));
  view.append(
    h("h2", {}, "Open ports"),
    shown(ports, (items) => table(["Port", "Protocol", "Service", "State", "Updated"],
      items.map((p) => h("tr", {}, h("td", {}, p.port), h("td", {}, p.proto), h("td", {}, p.service || ""),
        h("td", {}, p.state || ""), h("td", {}, when(p.updatedAt)))))),
    h("h2", {}, "Recent commands"),
    shown(commands, (items) => table(["Started", "Command", "Status", "Exit code"],
      items.map((c) => h("tr", {}, h("td", {}, when(c.startedAt)), h("td", {}, h("code", {}, c.command)),
        h("td", {}, c.status), h("td", {}, c.exitCode ?? "–"))))),
    h("h2", {}, "Live terminal sessions"),
    shown(live, (items) => table(["Started", "User", ""],
      items.map((s) => h("tr", {}, h("td", {}, when(s.startedAt)), h("td", {}, s.userId === user.id ? "you" : s.userId),
        h("td", {}, s.userId === user.id ? "" : h("a", { href: `#/watch/${s.id}` }, "Watch")))))),
    h("h2", {}, "Recent terminal sessions"),
    shown(sessions, (items) => table(["Started", "Ended", "Reason", "Bytes in / out", ""],
      items.map((s) => h("tr", {}, h("td", {}, when(s.startedAt)), h("td", {}, when(s.endedAt)),
        h("td", {}, s.closeReason || (s.endedAt ? "" : "open")), h("td", {}, `${s.bytesIn} / ${s.bytesOut}`),
        h("td", {}, s.endedAt ? h("a", { href: `#/recordings/${s.id}` }, "Play") : ""))))),
  );
}
