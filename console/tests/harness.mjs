// The browser tests' fixtures: a real fleetgate server (its own port and data directory,
// SQLite) and real fleetgate-agents with real shells, set up through the HTTP API.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const ADMIN_PASSWORD = "admin-password-for-tests";

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` resolves truthy (every 100 ms, up to `ms`). */
export async function eventually(check, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => false);
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(100);
  }
}

/** Starts `fleetgate serve` with a fresh data directory; the first admin is `admin`. */
export async function startServer(bin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fg-console-"));
  const port = await freePort();
  const log = fs.openSync(path.join(dir, "server.log"), "w");
  const child = spawn(bin, ["serve"], {
    env: {
      ...process.env,
      FLEETGATE__SERVER__BIND: `127.0.0.1:${port}`,
      FLEETGATE__STORAGE__DATA_DIR: dir,
      FLEETGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    },
    stdio: ["ignore", log, log],
  });
  const base = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${base}/readyz`)).ok, 30000);
  return {
    base,
    dir,
    /** Runs `fleetgate ARGS` against this server's database; resolves with its exit code. */
    cli(args) {
      const cli = spawn(bin, args, {
        env: { ...process.env, FLEETGATE__STORAGE__DATA_DIR: dir },
        stdio: ["ignore", "ignore", log],
      });
      return new Promise((resolve) => cli.once("exit", resolve));
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

/** Calls the API with a bearer token; resolves with [status, body]. */
export async function call(base, token, method, route, body) {
  const response = await fetch(`${base}/api/v1${route}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return [response.status, text ? JSON.parse(text) : null];
}

/** A bearer token for `username`. */
export async function token(base, username, password) {
  const [status, body] = await call(base, null, "POST", "/auth/login", { username, password });
  if (status !== 200) throw new Error(`login ${username}: ${status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Runs a real fleetgate-agent for a machine with `secret`; resolves once it is online. */
export async function startAgent(bin, server, adminToken, machineId, secret) {
  const keyFile = path.join(server.dir, `${machineId}.key`);
  fs.writeFileSync(keyFile, `${secret}\n`, { mode: 0o600 });
  const log = fs.openSync(path.join(server.dir, `${machineId}.agent.log`), "w");
  const child = spawn(bin, [
    "--server", `${server.base.replace("http", "ws")}/ws/agent`,
    "--key-file", keyFile, "--heartbeat-secs", "1",
  ], { stdio: ["ignore", log, log], env: { ...process.env, SHELL: "/bin/bash" } });
  await eventually(async () => {
    const [, machine] = await call(server.base, adminToken, "GET", `/machines/${machineId}`);
    return machine?.status === "online";
  }, 20000);
  return {
    stop() {
      child.kill("SIGTERM");
      return new Promise((resolve) => child.once("exit", resolve));
    },
  };
}
