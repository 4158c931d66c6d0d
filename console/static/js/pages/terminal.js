// A terminal in xterm.js: sized to the window (resizes reach the shell), copy and paste,
// notices for dropped output and for the close and its reason; who watches it, each watcher
// removable and able to be handed the keyboard. The session token and output
// offset are kept in this tab's sessionStorage, so a reload (or a dropped connection)
// re-attaches to the same shell and loses no output.

import { Terminal } from "../../vendor/xterm.mjs";
import { FitAddon } from "../../vendor/addon-fit.mjs";
import { api } from "../api.js";
import { h, message } from "../dom.js";

const encoder = new TextEncoder();
const stored = (id) => `fg.terminal.${id}`;

function remember(session) {
  sessionStorage.setItem(stored(session.id), JSON.stringify(session));
}

export async function terminalPage(view, { socket, spawnOn, attach }) {
  const notices = h("div", { id: "terminal-notices" });
  const box = h("div", { class: "terminal-box", id: "terminal" });
  const title = h("h1", {}, "Terminal");
  let session = null;
  let closed = false;
  let quietDrop = false;
  const close = h("button", { type: "button", class: "danger", id: "close-terminal",
    onclick: () => session && socket.send({ type: "close_terminal", sessionId: session.id }) }, "Close terminal");
  const copy = h("button", { type: "button", class: "secondary",
    onclick: () => navigator.clipboard?.writeText(term.getSelection()) }, "Copy selection");
  const watchers = h("ul", { id: "watchers", class: "watchers", "aria-label": "Watching this terminal" });
  view.append(h("section", { class: "terminal-page" }, title,
    h("div", { class: "toolbar" }, close, copy), watchers, notices, box));

  const term = new Terminal({
    cursorBlink: true, fontFamily: "ui-monospace, Menlo, Consolas, monospace", fontSize: 14, scrollback: 5000,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  term.focus();
  const requestId = `t${Date.now()}`;

  const say = (kind, text) => notices.append(message(kind, text));
  const offs = [
    socket.on("terminal_opened", (event) => {
      const ours = session ? event.sessionId === session.id : (event.requestId === requestId || event.sessionId === attach);
      if (!ours) return;
      session = { ...(session || { offset: 0 }), id: event.sessionId, machineId: event.machineId, token: event.sessionToken };
      remember(session);
      api("GET", `/machines/${event.machineId}`)
        .then((machine) => { title.textContent = `Terminal on ${machine.name}`; })
        .catch(() => { title.textContent = `Terminal on ${event.machineId}`; });
      if (location.hash !== `#/session/${session.id}`) history.replaceState(null, "", `#/session/${session.id}`);
      socket.send({ type: "terminal_resize", sessionId: session.id, cols: term.cols, rows: term.rows });
    }),
    socket.on("terminal_output", (event) => {
      if (!session || event.sessionId !== session.id) return;
      const end = event.offset + encoder.encode(event.data).length;
      if (end <= session.offset) return; // already shown before a re-attach
      term.write(event.data);
      session.offset = end;
      remember(session);
    }),
    socket.on("output_dropped", (event) => {
      if (quietDrop) {
        quietDrop = false; // older output than the server keeps, after a reload: expected
        return;
      }
      if (session && event.sessionId === session.id) {
        say("warn", `${event.bytes} bytes of output were dropped: the connection fell behind.`);
      }
    }),
    socket.on("terminal_closed", (event) => {
      if (!session || event.sessionId !== session.id) return;
      closed = true;
      sessionStorage.removeItem(stored(session.id));
      say("info", `Terminal closed: ${event.reason.replaceAll("_", " ")}.`);
      close.disabled = true;
      term.options.disableStdin = true;
    }),
    socket.on("watcher_joined", (event) => {
      if (!session || event.sessionId !== session.id) return;
      watchers.querySelector(`[data-watcher="${event.watcherId}"]`)?.remove();
      const send = (type, extra) => socket.send({ type, sessionId: session.id, watcherId: event.watcherId, ...extra });
      const typing = h("button", { type: "button", class: "secondary", "data-allowed": "false",
        onclick: () => send("set_watcher_input", { allowed: typing.dataset.allowed !== "true" }) }, "Let type");
      const remove = h("button", { type: "button", class: "secondary", onclick: () => send("remove_watcher") }, "Remove");
      watchers.append(h("li", { "data-watcher": event.watcherId }, `${event.name || event.userId} is watching `, typing, " ", remove));
    }),
    socket.on("watcher_input", (event) => {
      if (!session || event.sessionId !== session.id) return;
      const typing = watchers.querySelector(`[data-watcher="${event.watcherId}"] [data-allowed]`);
      if (!typing) return;
      typing.dataset.allowed = String(event.allowed);
      typing.textContent = event.allowed ? "Stop typing" : "Let type";
    }),
    socket.on("watcher_left", (event) => {
      if (!session || event.sessionId !== session.id) return;
      const entry = watchers.querySelector(`[data-watcher="${event.watcherId}"]`);
      const who = entry ? entry.firstChild.textContent.replace(/ is watching $/, "") : event.userId;
      entry?.remove();
      say("info", `${who} stopped watching (${event.reason.replaceAll("_", " ")}).`);
    }),
    socket.on("error", (event) => {
      if (event.requestId === requestId || (!event.requestId && session)) {
        say("error", `${event.message} (${event.code})`);
      }
    }),
    socket.on("disconnected", () => say("warn", "Connection lost; reconnecting…")),
    socket.on("reconnected", () => {
      notices.replaceChildren();
      if (session && !closed) socket.send({ type: "attach_terminal", sessionToken: session.token, offset: session.offset });
    }),
  ];
  const input = term.onData((data) => {
    if (session && !closed) socket.send({ type: "terminal_input", sessionId: session.id, data });
  });
  const showSize = () => Object.assign(box.dataset, { cols: term.cols, rows: term.rows });
  showSize();
  const resize = term.onResize(({ cols, rows }) => {
    showSize();
    if (session && !closed) socket.send({ type: "terminal_resize", sessionId: session.id, cols, rows });
  });
  const observer = new ResizeObserver(() => fit.fit());
  observer.observe(box);

  if (spawnOn) {
    socket.send({ type: "spawn_terminal", machineId: spawnOn, cols: term.cols, rows: term.rows, requestId });
  } else {
    const saved = JSON.parse(sessionStorage.getItem(stored(attach)) || "null");
    if (!saved) {
      say("error", "This session cannot be re-attached from this tab (its token is not here).");
    } else {
      // A reloaded page has an empty screen: replay what the server still keeps.
      session = { ...saved, offset: 0 };
      quietDrop = true;
      socket.send({ type: "attach_terminal", sessionToken: saved.token, offset: 0, requestId });
    }
  }

  // Leaving the page (not reloading it) ends the shell.
  return () => {
    if (session && !closed) {
      socket.send({ type: "close_terminal", sessionId: session.id });
      sessionStorage.removeItem(stored(session.id));
    }
    for (const off of offs) off();
    input.dispose();
    resize.dispose();
    observer.disconnect();
    term.dispose();
  };
}
