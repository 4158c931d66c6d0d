// The browser console in real Chromium (playwright-core, /usr/bin/chromium) against a real
// server and two real fleetgate-agents: log in, the fleet live, a terminal (typing, resize,
// reload re-attaches the same shell), a command on two machines, a viewer without controls and
// refused when crafting requests, a wrong password, CSP, CSRF, expiry and log-out. Screenshots
// go to target/console-screenshots/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

import { ADMIN_PASSWORD, call, eventually, startAgent, startServer, token } from "./harness.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, "target");
const SHOTS = path.join(TARGET, "console-screenshots");
const SERVER_BIN = process.env.FLEETGATE_BIN || path.join(TARGET, "debug/fleetgate");
const AGENT_BIN = process.env.FLEETGATE_AGENT_BIN || path.join(TARGET, "debug/fleetgate-agent");
const OPERATOR = ["olga", "operator-password-1"];
const VIEWER = ["victor", "viewer-password-12"];

let server;
let browser;
const agents = {};
const machines = {};

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  server = await startServer(SERVER_BIN);
  const admin = await token(server.base, "admin", ADMIN_PASSWORD);
  const users = {};
  for (const [[name, password], role] of [[OPERATOR, "operator"], [VIEWER, "viewer"]]) {
    const [status, user] = await call(server.base, admin, "POST", "/users", { username: name, password, role });
    assert.equal(status, 201, JSON.stringify(user));
    users[role] = user.id;
  }
  for (const name of ["web-1", "web-2"]) {
    const [status, enrolled] = await call(server.base, admin, "POST", "/machines", { name });
    assert.equal(status, 201, JSON.stringify(enrolled));
    machines[name] = enrolled.machine.id;
    await call(server.base, admin, "PUT", `/machines/${enrolled.machine.id}/access/${users.operator}`,
      { levels: ["view", "terminal", "command"] });
    // The viewer may watch web-2's terminals (observe), and only see web-1.
    await call(server.base, admin, "PUT", `/machines/${enrolled.machine.id}/access/${users.viewer}`,
      { levels: name === "web-2" ? ["view", "observe"] : ["view"] });
    agents[name] = await startAgent(AGENT_BIN, server, admin, enrolled.machine.id, enrolled.secret);
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
  for (const agent of Object.values(agents)) await agent.stop();
  await server?.stop();
});

/** A fresh browser context at 1280×800, logged in as `user`. */
async function loggedIn([username, password]) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.base}/`);
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForSelector("#fleet-list .fleet-row");
  return { context, page };
}

const row = (page, name) => page.locator(".fleet-row", { has: page.getByRole("link", { name, exact: true }) });

/** The terminal's text as shown. */
const screenText = (page) => page.locator("#terminal .xterm-rows").innerText();

async function typeLine(page, text) {
  await page.locator("#terminal").click();
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

test("a wrong password shows a message and leaves no token for scripts; the page has a strict CSP", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(`${server.base}/`);
  const policy = response.headers()["content-security-policy"];
  assert.match(policy, /script-src 'self';/);
  assert.doesNotMatch(policy, /script-src[^;]*unsafe-inline/);
  await page.getByLabel("User name").fill(OPERATOR[0]);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Wrong user name or password.").waitFor();
  const readable = await page.evaluate(() => JSON.stringify({
    cookie: document.cookie, local: { ...localStorage }, session: { ...sessionStorage },
  }));
  assert.doesNotMatch(readable, /eyJ/, "no JWT anywhere scripts can read");

  await page.getByLabel("Password").fill(OPERATOR[1]);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForSelector("#fleet-list .fleet-row");
  const after = await page.evaluate(() => document.cookie + JSON.stringify({ ...localStorage, ...sessionStorage }));
  assert.doesNotMatch(after, /eyJ/, "logged in, and still no JWT readable by scripts");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "session");
  assert.ok(session?.httpOnly && session.sameSite === "Strict", "HttpOnly, SameSite=Strict session cookie");
  await context.close();
});

test("the fleet shows both machines online with their figures", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  for (const name of ["web-1", "web-2"]) {
    await row(page, name).and(page.locator('[data-status="online"]')).waitFor();
  }
  await page.getByLabel("Search").fill("web-2");
  await eventually(async () => (await page.locator(".fleet-row").count()) === 1);
  await page.getByLabel("Search").fill("");
  await eventually(async () => (await page.locator(".fleet-row").count()) === 2);
  await page.screenshot({ path: path.join(SHOTS, "fleet.png") });
  await context.close();
});

test("a terminal echoes, follows the window's size and survives a reload", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  await row(page, "web-1").getByRole("link", { name: "Terminal" }).click();
  await page.waitForURL(/#\/session\/[0-9a-f]{32}$/);
  await typeLine(page, 'echo hel""lo');
  await eventually(async () => (await screenText(page)).split("\n").some((line) => line.trim() === "hello"));

  const box = page.locator("#terminal");
  const before = await box.getAttribute("data-cols");
  await page.setViewportSize({ width: 800, height: 600 });
  const size = await eventually(async () => {
    const cols = await box.getAttribute("data-cols");
    return cols !== before ? [await box.getAttribute("data-rows"), cols] : null;
  });
  await typeLine(page, "stty size");
  await eventually(async () => (await screenText(page)).includes(`${size[0]} ${size[1]}`));

  await typeLine(page, "echo pid-$$-end");
  const pid = await eventually(async () => (await screenText(page)).match(/^pid-(\d+)-end/m)?.[1]);
  await page.screenshot({ path: path.join(SHOTS, "terminal.png") });
  const url = page.url();
  await page.reload();
  assert.equal(page.url(), url, "the page stays on the session");
  await page.waitForSelector("#terminal .xterm-rows");
  await eventually(async () => (await screenText(page)).includes(`pid-${pid}-end`));
  await typeLine(page, "echo again-$$-end");
  await eventually(async () => (await screenText(page)).includes(`again-${pid}-end`));
  await page.getByRole("button", { name: "Close terminal" }).click();
  await page.getByText("Terminal closed: closed.").waitFor();
  await context.close();
});

test("the machine page charts the metrics, lists ports, commands and sessions, and plays a recording", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  await page.goto(`${server.base}/#/machines/${machines["web-1"]}`);
  await page.locator("#charts figure canvas").first().waitFor();
  assert.equal(await page.locator("#charts figure").count(), 3);
  await page.getByRole("heading", { name: "Recent terminal sessions" }).waitFor();
  await page.screenshot({ path: path.join(SHOTS, "machine.png"), fullPage: true });

  // The terminal session of the earlier test, played back from its recording.
  await page.getByRole("link", { name: "Play" }).first().click();
  await page.getByLabel("Speed").selectOption("20");
  await page.locator('#playback[data-finished="true"]').waitFor({ timeout: 30000 });
  const replayed = await page.locator("#playback .xterm-rows").innerText();
  assert.ok(replayed.split("\n").some((line) => line.trim() === "hello"), replayed);
  await page.screenshot({ path: path.join(SHOTS, "recording.png") });
  await context.close();
});

test("a command runs on two machines with both outputs and exit codes", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  for (const name of ["web-1", "web-2"]) await row(page, name).getByRole("checkbox").check();
  await page.getByRole("button", { name: "Run command on selected" }).click();
  await page.getByLabel("Command").fill("echo ran-$((40+2)); exit 3");
  await page.getByRole("button", { name: "Run" }).click();
  for (const name of ["web-1", "web-2"]) {
    const result = page.locator(`.result[data-machine="${machines[name]}"]`);
    await result.getByText("exit code 3").waitFor();
    assert.match(await result.locator("pre").innerText(), /ran-42/);
  }
  await context.close();
});

test("a viewer has no terminal or command controls, and crafted requests are refused", async () => {
  const { context, page } = await loggedIn(VIEWER);
  await row(page, "web-1").waitFor();
  assert.equal(await page.getByRole("link", { name: "Terminal" }).count(), 0);
  assert.equal(await page.getByRole("checkbox").count(), 0);
  assert.equal(await page.getByRole("link", { name: "Commands" }).isVisible(), false);
  const statuses = await page.evaluate(async (machine) => {
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrf=")).slice(5);
    const post = (headers) => fetch(`/api/v1/machines/${machine}/commands`, {
      method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify({ command: "id" }),
    }).then((r) => r.status);
    return [await post({ "X-CSRF-Token": csrf }), await post({})];
  }, machines["web-1"]);
  assert.deepEqual(statuses, [403, 403], "no grant, and no CSRF token");
  await page.goto(`${server.base}/#/terminal/${machines["web-1"]}`);
  await page.getByText(/not allowed|forbidden/i).first().waitFor();
  await context.close();
});

test("a viewer with observe watches an operator's terminal read-only; the operator removes them and hands an admin the keyboard", async () => {
  const operator = await loggedIn(OPERATOR);
  await row(operator.page, "web-2").getByRole("link", { name: "Terminal" }).click();
  await operator.page.waitForURL(/#\/session\/[0-9a-f]{32}$/);
  const sessionId = operator.page.url().match(/session\/([0-9a-f]{32})$/)[1];
  const lineOn = async (page, text) => (await screenText(page)).split("\n").some((line) => line.trim() === text);
  await typeLine(operator.page, 'echo be""fore');
  await eventually(() => lineOn(operator.page, "before"));

  const viewer = await loggedIn(VIEWER);
  await viewer.page.goto(`${server.base}/#/machines/${machines["web-2"]}`);
  await viewer.page.locator(`a[href="#/watch/${sessionId}"]`).click();
  await eventually(() => lineOn(viewer.page, "before"));
  await operator.page.getByText("victor is watching").waitFor();
  await typeLine(operator.page, 'echo wat""ched');
  await eventually(() => lineOn(viewer.page, "watched"));
  await viewer.page.locator("#terminal").click();
  await viewer.page.keyboard.type("echo intruder");
  await viewer.page.keyboard.press("Enter");
  await viewer.page.screenshot({ path: path.join(SHOTS, "watching.png") });

  // A viewer can never be handed the keyboard; an administrator can.
  await operator.page.getByRole("button", { name: "Let type" }).click();
  await operator.page.getByText(/may not type/).waitFor();
  const admin = await loggedIn(["admin", ADMIN_PASSWORD]);
  await admin.page.goto(`${server.base}/#/watch/${sessionId}`);
  await operator.page.getByText("admin is watching").waitFor();
  await operator.page.locator("li", { hasText: "admin is watching" }).getByRole("button", { name: "Let type" }).click();
  await admin.page.getByText("The owner lets you type.", { exact: true }).waitFor();
  await typeLine(admin.page, 'echo han""ded');
  await eventually(() => lineOn(operator.page, "handed"));
  await operator.page.locator("li", { hasText: "admin is watching" }).getByRole("button", { name: "Stop typing" }).click();
  await admin.page.getByText("The owner took the keyboard back.", { exact: true }).waitFor();
  await admin.context.close();

  await operator.page.locator("li", { hasText: "victor is watching" }).getByRole("button", { name: "Remove" }).click();
  await viewer.page.getByText("Watching ended: the session's owner removed you.").waitFor();
  await operator.page.getByText("victor stopped watching (removed).").waitFor();
  await typeLine(operator.page, 'echo af""ter');
  await eventually(() => lineOn(operator.page, "after"));
  assert.ok(!(await screenText(operator.page)).includes("intruder"), "nothing the watcher typed reached the shell");
  assert.ok(!(await lineOn(viewer.page, "after")), "a removed watcher sees nothing more");
  await operator.page.getByRole("button", { name: "Close terminal" }).click();
  await operator.page.getByText("Terminal closed: closed.").waitFor();
  await viewer.context.close();
  await operator.context.close();
});

test("an expired session returns to the login page with a message; log out works", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  await context.clearCookies();
  await page.getByRole("link", { name: "Commands" }).click();
  await page.getByText("Your session expired; please log in again.").waitFor();
  await page.getByLabel("User name").fill(OPERATOR[0]);
  await page.getByLabel("Password").fill(OPERATOR[1]);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForSelector("#fleet-list .fleet-row");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("You are logged out.").waitFor();
  assert.equal((await context.cookies()).some((c) => c.name === "session"), false);
  await context.close();
});

test("an administrator enrols a machine and reads the audit log", async () => {
  const { context, page } = await loggedIn(["admin", ADMIN_PASSWORD]);
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByLabel("Machine name").fill("web-3");
  await page.getByRole("button", { name: "Enrol machine" }).click();
  const secret = await page.locator("#secret .secret").innerText();
  assert.match(secret, /^[0-9a-f]{64}$/);
  await page.getByRole("link", { name: "Audit" }).click();
  await page.locator("#audit tbody tr", { hasText: "machine.add" }).first().waitFor();
  await context.close();
});

test("ten thousand machines: the list keeps only the rows in view, search and scrolling reach any", async () => {
  const out = path.join(server.dir, "bulk.keys");
  assert.equal(await server.cli(["machine", "add", "bulk", "--count", "10000", "--out", out]), 0);
  const { context, page } = await loggedIn(["admin", ADMIN_PASSWORD]);
  await page.locator("#fleet-count", { hasText: /of 1000[0-9] online/ }).waitFor({ timeout: 30000 });
  const rows = await page.locator(".fleet-row").count();
  assert.ok(rows > 5 && rows < 60, `only the rows in view exist (${rows})`);
  await page.locator("#fleet-list").evaluate((list) => { list.scrollTop = list.scrollHeight; });
  await row(page, "web-2").waitFor();
  await page.getByLabel("Search").fill("bulk-9999");
  await eventually(async () => (await page.locator(".fleet-row").count()) === 1);
  await row(page, "bulk-9999").waitFor();
  await context.close();
});

test("a narrow window keeps the fleet usable without sideways scrolling", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  await page.setViewportSize({ width: 420, height: 800 });
  await row(page, "web-1").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal overflow (${overflow} px)`);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.textContent || document.activeElement?.id);
  assert.ok(focused, "keyboard focus moves through the page");
  await page.screenshot({ path: path.join(SHOTS, "fleet-narrow.png") });
  await context.close();
});

test("a machine whose agent stops goes offline in the page without a reload", async () => {
  const { context, page } = await loggedIn(OPERATOR);
  await row(page, "web-2").and(page.locator('[data-status="online"]')).waitFor();
  await agents["web-2"].stop();
  delete agents["web-2"];
  await row(page, "web-2").and(page.locator('[data-status="offline"]')).waitFor({ timeout: 15000 });
  await context.close();
});
