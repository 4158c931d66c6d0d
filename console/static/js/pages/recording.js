// Plays a terminal session's recording (asciicast v2 from the playback API) in xterm.js at
// its real pace or faster; long pauses are shortened to two seconds.

import { Terminal } from "../../vendor/xterm.mjs";
import { ApiError } from "../api.js";
import { h, message } from "../dom.js";

const LONGEST_PAUSE = 2;

async function fetchCast(sessionId) {
  const response = await fetch(`/api/v1/sessions/${sessionId}/recording`, { credentials: "same-origin" });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new ApiError(response.status, problem.detail || response.statusText);
  }
  return response.text();
}

export async function recordingPage(view, { params }) {
  const [sessionId] = params;
  const status = h("div", { id: "playback-status", "aria-live": "polite" });
  const speed = h("select", { id: "speed" }, [1, 2, 5, 20].map((s) => h("option", { value: s }, `${s}×`)));
  const box = h("div", { class: "terminal-box", id: "playback" });
  view.append(h("section", { class: "terminal-page" }, h("h1", {}, `Recording of session ${sessionId}`),
    h("div", { class: "toolbar" }, h("label", { for: "speed" }, "Speed", speed)), status, box));
  let cast;
  try {
    cast = await fetchCast(sessionId);
  } catch (err) {
    status.replaceChildren(message("error", err.message));
    return undefined;
  }
  const [headerLine, ...eventLines] = cast.split("\n").filter((line) => line.trim());
  const header = JSON.parse(headerLine);
  const term = new Terminal({ cols: header.width, rows: header.height, disableStdin: true, scrollback: 5000 });
  term.open(box);
  const events = eventLines.map((line) => JSON.parse(line));
  let stopped = false;
  status.replaceChildren(message("info", `Playing ${events.length} events recorded ${new Date(header.timestamp * 1000).toLocaleString()}.`));
  (async () => {
    let clock = 0;
    for (const [at, code, data] of events) {
      if (stopped) return;
      const pause = Math.min(Math.max(at - clock, 0), LONGEST_PAUSE) / Number(speed.value);
      clock = at;
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause * 1000));
      if (code === "o") term.write(data);
      else if (code === "r") {
        const [cols, rows] = data.split("x").map(Number);
        if (cols && rows) term.resize(cols, rows);
      }
    }
    box.dataset.finished = "true";
    status.replaceChildren(message("info", "End of the recording."));
  })();
  return () => {
    stopped = true;
    term.dispose();
  };
}
