// Watching another user's live terminal: xterm.js at the owner's size, read-only until the owner
// hands over the keyboard; notices for dropped output, the session's close and the end of the
// watch.

import { Terminal } from "../../vendor/xterm.mjs";
import { h, message } from "../dom.js";

const ENDED = {
  left: "you stopped watching",
  removed: "the session's owner removed you",
  owner_disconnected: "the session's owner disconnected",
};

export async function watchPage(view, { socket, params }) {
  const [sessionId] = params;
  const notices = h("div", { id: "watch-notices", "aria-live": "polite" });
  const box = h("div", { class: "terminal-box", id: "terminal" });
  const title = h("h1", {}, `Watching session ${sessionId}`);
  let watching = false;
  let typing = false;
  const stop = h("button", { type: "button", class: "secondary", id: "stop-watching",
    onclick: () => socket.send({ type: "unwatch_terminal", sessionId }) }, "Stop watching");
  view.append(h("section", { class: "terminal-page" }, title,
    h("p", {}, "Read-only unless the owner lets you type."),
    h("div", { class: "toolbar" }, stop), notices, box));
  const term = new Terminal({ disableStdin: true, scrollback: 5000, fontFamily: "ui-monospace, Menlo, Consolas, monospace", fontSize: 14 });
  term.open(box);
  const say = (kind, text) => notices.append(message(kind, text));
  const requestId = `w${Date.now()}`;
  const ours = (event) => event.sessionId === sessionId;
  const finish = (text) => {
    watching = false;
    typing = false;
    stop.disabled = true;
    box.dataset.ended = "true";
    say("info", text);
  };
  const offs = [
    socket.on("terminal_watching", (event) => {
      if (!ours(event)) return;
      watching = true;
      term.resize(event.cols, event.rows);
      title.textContent = `Watching session ${sessionId} (user ${event.ownerId})`;
    }),
    socket.on("terminal_output", (event) => { if (ours(event) && watching) term.write(event.data); }),
    socket.on("output_dropped", (event) => {
      if (ours(event)) say("warn", `${event.bytes} bytes of output were dropped: the connection fell behind.`);
    }),
    socket.on("watcher_input", (event) => {
      if (!ours(event)) return;
      typing = event.allowed;
      term.options.disableStdin = !typing;
      box.dataset.typing = String(typing);
      say("info", typing ? "The owner lets you type." : "The owner took the keyboard back.");
      if (typing) term.focus();
    }),
    socket.on("terminal_closed", (event) => { if (ours(event)) finish(`Terminal closed: ${event.reason.replaceAll("_", " ")}.`); }),
    socket.on("watch_ended", (event) => { if (ours(event)) finish(`Watching ended: ${ENDED[event.reason] || event.reason}.`); }),
    socket.on("error", (event) => { if (event.requestId === requestId) say("error", `${event.message} (${event.code})`); }),
    socket.on("reconnected", () => {
      if (watching) socket.send({ type: "watch_terminal", sessionId, requestId });
    }),
  ];
  const input = term.onData((data) => {
    if (watching && typing) socket.send({ type: "terminal_input", sessionId, data });
  });
  socket.send({ type: "watch_terminal", sessionId, requestId });
  return () => {
    input.dispose();
    if (watching) socket.send({ type: "unwatch_terminal", sessionId });
    for (const off of offs) off();
    term.dispose();
  };
}
