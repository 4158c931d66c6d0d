// The console's one operator socket (/ws/web, authenticated by the session cookie): pages
// listen by message type; it reconnects by itself after a network blip and tells the pages
// ("reconnected"), which re-subscribe or re-attach.

/** Close codes after which reconnecting is pointless (docs/protocol.md sections 1 and 6). */
const FINAL_CLOSES = new Set([4401, 4403]);

export class FleetSocket {
  constructor() {
    this.listeners = new Map();
    this.pending = [];
    this.socket = null;
    this.open = false;
    this.stopped = false;
    this.delay = 500;
    this.hello = null;
  }

  /** Opens the socket; resolves with the server's `hello`, rejects if it cannot open. */
  connect() {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/web`);
      this.socket = socket;
      let greeted = false;
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message.type === "hello" && !greeted) {
          greeted = true;
          this.open = true;
          this.delay = 500;
          this.hello = message;
          for (const queued of this.pending.splice(0)) socket.send(queued);
          resolve(message);
          return;
        }
        this.emit(message.type, message);
      });
      socket.addEventListener("close", (event) => {
        this.open = false;
        if (!greeted) {
          reject(new Error(`socket closed (${event.code})`));
          return;
        }
        if (this.stopped) return;
        if (FINAL_CLOSES.has(event.code)) {
          this.emit("ended", { code: event.code, reason: event.reason });
          return;
        }
        this.emit("disconnected", {});
        setTimeout(() => this.reconnect(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      });
    });
  }

  async reconnect() {
    if (this.stopped) return;
    try {
      await this.connect();
      this.emit("reconnected", {});
    } catch {
      if (!this.stopped) {
        this.emit("ended", { code: 0, reason: "cannot reconnect" });
      }
    }
  }

  /** Calls `handler` for every message of `type`; returns a function that stops it. */
  on(type, handler) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(handler);
    return () => this.listeners.get(type)?.delete(handler);
  }

  emit(type, message) {
    for (const handler of [...(this.listeners.get(type) || [])]) handler(message);
  }

  /** Sends a message now, or once the socket is open again. */
  send(message) {
    const text = JSON.stringify(message);
    if (this.open) this.socket.send(text);
    else this.pending.push(text);
  }

  /** Closes for good (log out). */
  close() {
    this.stopped = true;
    this.socket?.close(1000, "logout");
  }
}
