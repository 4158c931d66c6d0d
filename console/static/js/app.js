// The console's entry point: the session (log in, log out, expiry), the header, and a hash
// router that shows one page at a time. Pages are functions (view, context) returning a
// clean-up function.

import { api, onSessionExpired } from "./api.js";
import { message } from "./dom.js";
import { FleetSocket } from "./socket.js";
import { loginPage } from "./pages/login.js";
import { fleetPage } from "./pages/fleet.js";
import { machinePage } from "./pages/machine.js";
import { terminalPage } from "./pages/terminal.js";
import { commandsPage } from "./pages/commands.js";
import { auditPage } from "./pages/audit.js";
import { adminPage } from "./pages/admin.js";
import { recordingPage } from "./pages/recording.js";
import { watchPage } from "./pages/watch.js";

const session = { user: null, socket: null };
let cleanup = () => {};
let loginNotice = null;

const routes = [
  [/^#\/fleet$/, fleetPage],
  [/^#\/machines\/([0-9a-f-]{36})$/, machinePage],
  [/^#\/terminal\/([0-9a-f-]{36})$/, (view, ctx) => terminalPage(view, { ...ctx, spawnOn: ctx.params[0] })],
  [/^#\/session\/([0-9a-f]{32})$/, (view, ctx) => terminalPage(view, { ...ctx, attach: ctx.params[0] })],
  [/^#\/recordings\/([0-9a-f]{32})$/, recordingPage],
  [/^#\/watch\/([0-9a-f]{32})$/, watchPage],
  [/^#\/commands$/, commandsPage, "operate"],
  [/^#\/audit$/, auditPage, "admin"],
  [/^#\/admin$/, adminPage, "admin"],
];

function allowed(need, user) {
  if (need === "admin") return user.role === "admin";
  if (need === "operate") return user.role !== "viewer";
  return true;
}

/** Starts a session from the cookie, if it is valid: the socket's hello names the user. */
async function resume() {
  if (session.user) return true;
  const socket = new FleetSocket();
  try {
    const hello = await socket.connect();
    session.socket = socket;
    session.user = {
      id: hello.userId,
      role: hello.role,
      name: sessionStorage.getItem("fg.username") || hello.userId,
    };
    socket.on("ended", (event) => {
      if (event.code === 4403) expire("Your account was changed or disabled by an administrator.");
      else expire("Your session ended; please log in again.");
    });
    showHeader();
    return true;
  } catch {
    return false;
  }
}

function showHeader() {
  const header = document.getElementById("top");
  header.hidden = !session.user;
  if (!session.user) return;
  document.getElementById("who").textContent = `${session.user.name} (${session.user.role})`;
  for (const link of header.querySelectorAll("[data-needs]")) {
    link.hidden = !allowed(link.dataset.needs, session.user);
  }
}

/** Back to the login page with `text` shown there. */
function expire(text) {
  session.socket?.close();
  session.socket = null;
  session.user = null;
  loginNotice = text;
  showHeader();
  if (location.hash !== "#/login") location.hash = "#/login";
  else route();
}

async function logout() {
  try {
    await api("POST", "/auth/logout");
  } finally {
    sessionStorage.removeItem("fg.username");
    expire("You are logged out.");
  }
}

async function route() {
  cleanup();
  cleanup = () => {};
  const view = document.getElementById("view");
  view.replaceChildren();
  const hash = location.hash || "#/fleet";
  if (hash === "#/login" || !(await resume())) {
    if (hash !== "#/login") {
      location.hash = "#/login";
      return;
    }
    const notice = loginNotice;
    loginNotice = null;
    cleanup = loginPage(view, {
      notice,
      loggedIn: async (username) => {
        sessionStorage.setItem("fg.username", username);
        if (await resume()) location.hash = "#/fleet";
      },
    }) || (() => {});
    return;
  }
  for (const link of document.querySelectorAll("header nav a")) {
    link.toggleAttribute("aria-current", hash.startsWith(link.getAttribute("href")));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  for (const [pattern, page, need] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    if (need && !allowed(need, session.user)) {
      view.append(message("error", "Your role does not allow this page."));
      return;
    }
    const context = { user: session.user, socket: session.socket, params: match.slice(1) };
    try {
      cleanup = (await page(view, context)) || (() => {});
    } catch (err) {
      view.append(message("error", err.message));
    }
    view.focus();
    return;
  }
  location.hash = "#/fleet";
}

/** While someone works in the page, its session is renewed before the token expires; an idle
 * tab is not kept logged in. */
const RENEW_EVERY_MS = 20 * 60 * 1000;
let activeSinceRenewal = false;
for (const kind of ["keydown", "pointerdown"]) {
  window.addEventListener(kind, () => { activeSinceRenewal = true; }, { passive: true });
}
setInterval(async () => {
  if (!session.user || !activeSinceRenewal) return;
  activeSinceRenewal = false;
  await api("POST", "/auth/refresh").catch(() => {}); // a 401 returns to the login page
}, RENEW_EVERY_MS);

onSessionExpired(() => expire("Your session expired; please log in again."));
document.getElementById("logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
route();
