import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureCgroup } from "../runtime/local/cgroups.js";
import { Supervisor } from "../runtime/local/supervisor.js";
import { TempkubeError } from "../util/errors.js";
import { logger } from "../util/log.js";
import { controlGet } from "./control-client.js";
import { GatewayPaths, type GatewayConfig } from "./gateway-files.js";

/**
 * The gateway runs as a process of its own under the bash supervisor the cluster components
 * use: detached, in its own session and cgroup, so a restart or a SIGKILL of the server does
 * not cut connections open through it (a `kubectl logs -f`, watches), and a crash of the
 * gateway is restarted. The server only (re)starts it and reads its control socket.
 */
export const GATEWAY_COMPONENT = "gateway";
export const GATEWAY_CGROUP = "/tempkube-host/gateway";
const READY_TIMEOUT_MS = 10_000;
/** main.ts exits with this when it cannot run with its configuration (address in use, ...): restarting will not help. */
const CONFIG_EXIT_CODE = 2;
const GIVE_UP_EXITS = 3;

const GATEWAY_JS_DIR = dirname(fileURLToPath(import.meta.url));
const MAIN_JS = join(GATEWAY_JS_DIR, "main.js");

/**
 * A hash of the gateway's own code: a gateway started by an older tempkube keeps running
 * across server restarts, so an upgrade is noticed by this, not only by a changed config.
 */
async function codeVersion(): Promise<string> {
  const hash = createHash("sha256");
  const files = (await readdir(GATEWAY_JS_DIR)).filter((f) => f.endsWith(".js") && !f.includes(".test.")).sort();
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(await readFile(join(GATEWAY_JS_DIR, f)))
      .update("\0");
  return hash.digest("hex").slice(0, 16);
}

function supervisor(paths: GatewayPaths): Supervisor {
  return new Supervisor(paths.runDir, paths.logDir);
}

export function gatewayRunning(dataDir: string): Promise<boolean> {
  return supervisor(new GatewayPaths(dataDir)).isRunning(GATEWAY_COMPONENT);
}

export async function stopGateway(dataDir: string): Promise<void> {
  await supervisor(new GatewayPaths(dataDir)).stopAll();
}

/**
 * Starts the gateway with this configuration unless it already runs with it; a changed
 * configuration restarts it (connections through it are cut: that is what a new listen
 * address or cluster domain means). Returns once its control socket answers, or throws
 * a TempkubeError naming the cause and the log file.
 */
export async function ensureGateway(dataDir: string, config: GatewayConfig): Promise<void> {
  const paths = new GatewayPaths(dataDir);
  const sup = supervisor(paths);
  for (const dir of [paths.root, paths.runDir, paths.logDir, paths.routesDir, paths.sleepingDir, paths.wakeDir])
    await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(config, null, 2)}\n`;
  const current = await readFile(paths.config, "utf8").catch(() => undefined);
  const codeFile = join(paths.runDir, "gateway.code");
  const code = await codeVersion();
  const sameCode = (await readFile(codeFile, "utf8").catch(() => "")) === code;
  const running = await sup.isRunning(GATEWAY_COMPONENT);
  // The log is appended to across runs: only what this start wrote explains its failure.
  const logStart = await stat(sup.logFile(GATEWAY_COMPONENT)).then(
    (s) => s.size,
    () => 0,
  );
  // Same configuration: leave it running (its connections stay open); it may still be starting, so it gets the same wait.
  if (!running || current !== text || !sameCode) {
    if (running) {
      logger.info({ dataDir }, `gateway ${sameCode ? "configuration" : "code"} changed; restarting it`);
      await sup.stopAll();
    }
    await writeFile(`${paths.config}.tmp`, text);
    await rename(`${paths.config}.tmp`, paths.config);
    await ensureCgroup(GATEWAY_CGROUP).catch((err: unknown) =>
      // Without a cgroup (not root, no cgroupfs) the gateway runs all the same; the supervisor skips what it cannot join.
      logger.warn({ err }, `cannot make the gateway's cgroup ${GATEWAY_CGROUP}`),
    );
    await writeFile(codeFile, code);
    await sup.start({
      name: GATEWAY_COMPONENT,
      command: process.execPath,
      args: [MAIN_JS, dataDir],
      cgroup: GATEWAY_CGROUP,
      netnsPath: undefined,
      env: { TEMPKUBE_LOG_LEVEL: process.env.TEMPKUBE_LOG_LEVEL ?? "info" },
    });
  }

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if ((await controlGet(paths, "/activity")) !== undefined) return;
    const { count, lastCode } = await sup.exits(GATEWAY_COMPONENT);
    const gaveUp = (count > 0 && lastCode === CONFIG_EXIT_CODE) || count >= GIVE_UP_EXITS;
    if (gaveUp || Date.now() > deadline || !(await sup.isRunning(GATEWAY_COMPONENT))) {
      const lines = await logLinesSince(sup.logFile(GATEWAY_COMPONENT), logStart);
      await sup.stopAll();
      const cause =
        lastFailure(lines) ?? (gaveUp ? `it exited ${count} times` : "its control socket did not answer within 10 s");
      throw new TempkubeError(
        /EADDRINUSE|EADDRNOTAVAIL/.test(cause) ? "invalid-input" : "host",
        `the gateway did not start: ${cause} (log: ${sup.logFile(GATEWAY_COMPONENT)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function logLinesSince(file: string, offset: number): Promise<string[]> {
  const handle = await open(file, "r").catch(() => undefined);
  if (!handle) return [];
  try {
    const { size } = await handle.stat();
    const from = Math.max(offset, size - 64 * 1024);
    const buf = Buffer.alloc(Math.max(0, size - from));
    await handle.read(buf, 0, buf.length, from);
    return buf.toString("utf8").split("\n").filter(Boolean);
  } finally {
    await handle.close();
  }
}

/** The message of the last fatal or error line the gateway logged (pino JSON), if any. */
function lastFailure(lines: string[]): string | undefined {
  for (const line of [...lines].reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) return [entry.msg, entry.err?.message].filter(Boolean).join(": ");
    } catch {
      /* not a log line of ours (the supervisor's own) */
    }
  }
  return undefined;
}
