import { freePort } from "../util/net.js";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { run } from "../util/exec.js";
import { ChildProcessError, TempkubeError } from "../util/errors.js";

const INSTALL_ROOT = "/usr/lib/postgresql";
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const TAIL_LINES = 20;

/**
 * A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, listening
 * only on 127.0.0.1 at a free port (its socket in that directory too), trust auth, no
 * fsync. `stop()` (or `await using`) ends it and removes the directory.
 *
 * As root it runs as the `postgres` system user (initdb and postgres refuse root). Both run
 * under `setpriv --pdeathsig KILL`, so a test process killed outright takes the server with
 * it, and a process that exits without `stop()` kills it on the way out.
 */
export class TestPostgres {
  private stopped?: Promise<void>;
  private readonly onExit = () => this.killNow();

  private constructor(
    /** postgres://postgres@127.0.0.1:<port>/postgres */
    readonly url: string,
    readonly port: number,
    private readonly dir: string,
    private readonly server: ChildProcess,
  ) {
    process.once("exit", this.onExit);
  }

  /** Starts a server; fails (never skips) with what to install when PostgreSQL is missing. */
  static async start(): Promise<TestPostgres> {
    const bin = postgresBinDir();
    const user = runAs();
    const dir = await mkdtemp(join(tmpdir(), "tempkube-pg-"));
    let server: ChildProcess | undefined;
    try {
      if (user) await chown(dir, user.uid, user.gid);
      const data = join(dir, "data");
      await run(
        "setpriv",
        [
          ...(user?.setpriv ?? []),
          "--pdeathsig",
          "KILL",
          "--",
          join(bin, "initdb"),
          "-D",
          data,
          "-U",
          "postgres",
          "--auth=trust",
          "--no-sync",
          "--encoding=UTF8",
          "--locale=C",
        ],
        { cwd: dir, timeoutMs: 120_000 },
      );
      // Another process may take the free port between finding and binding it: try again then.
      for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        const started = await launch(bin, user?.setpriv ?? [], dir, data, port);
        server = started.server;
        if (started.ready)
          return new TestPostgres(`postgres://postgres@127.0.0.1:${port}/postgres`, port, dir, started.server);
        if (attempt < 3 && started.lastLines.some((l) => /could not bind|already in use/i.test(l))) continue;
        throw new ChildProcessError({
          command: `${join(bin, "postgres")} -D ${data} -p ${port}`,
          exitCode: started.server.exitCode,
          signal: started.server.signalCode,
          lastLines: started.lastLines,
        });
      }
    } catch (err) {
      if (server && server.exitCode === null && server.signalCode === null) {
        server.kill("SIGKILL");
        await exited(server, STOP_TIMEOUT_MS);
      }
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A new, empty database on this server; its URL. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]*$/.test(name))
      throw new TempkubeError("invalid-input", `database name "${name}" must be lower-case letters, digits and _`);
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      await client.query(`create database ${name}`);
    } finally {
      await client.end();
    }
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  /** Ends the server (fast shutdown, then SIGKILL after 10 s) and removes its directory. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      if (this.server.exitCode === null && this.server.signalCode === null) {
        this.server.kill("SIGINT");
        if (!(await exited(this.server, STOP_TIMEOUT_MS))) {
          this.server.kill("SIGKILL");
          await exited(this.server, STOP_TIMEOUT_MS);
        }
      }
      await rm(this.dir, { recursive: true, force: true });
      process.removeListener("exit", this.onExit);
    })();
    return this.stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private killNow(): void {
    if (this.server.exitCode === null && this.server.signalCode === null) this.server.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The newest installed major version's binaries (Debian: /usr/lib/postgresql/<major>/bin). */
function postgresBinDir(): string {
  const majors = existsSync(INSTALL_ROOT)
    ? readdirSync(INSTALL_ROOT)
        .filter((d) => /^\d+$/.test(d))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const found = majors
    .map((m) => join(INSTALL_ROOT, m, "bin"))
    .find((bin) => existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres")));
  if (!found) {
    throw new TempkubeError(
      "setup",
      `PostgreSQL is not installed (no ${INSTALL_ROOT}/<major>/bin/initdb), and the store tests run against it: ` +
        "install it with `sudo scripts/setup` (postgresql is in scripts/debian-packages.txt) or `sudo apt-get install -y postgresql`",
    );
  }
  return found;
}

/** As root, the `postgres` system user the Debian package creates; otherwise ourselves (undefined). */
function runAs(): { uid: number; gid: number; setpriv: string[] } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === "postgres");
  if (!entry) {
    throw new TempkubeError(
      "setup",
      "there is no postgres system user (the postgresql Debian package creates it), and PostgreSQL will not run as root: " +
        "`sudo apt-get install -y postgresql`",
    );
  }
  return {
    uid: Number(entry[2]),
    gid: Number(entry[3]),
    setpriv: ["--reuid=postgres", "--regid=postgres", "--init-groups"],
  };
}

/** Starts postgres and waits until it accepts connections, or exits (ready: false, with its last lines). */
async function launch(bin: string, setpriv: string[], dir: string, data: string, port: number) {
  const server = spawn(
    "setpriv",
    [
      ...setpriv,
      "--pdeathsig",
      "KILL",
      "--",
      join(bin, "postgres"),
      "-D",
      data,
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-k",
      dir,
      // A test's data is thrown away: no durability, little memory.
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "shared_buffers=16MB",
      "-c",
      "max_connections=50",
    ],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(
      ...chunk
        .toString()
        .split("\n")
        .filter((l) => l.trim()),
    );
    lines.splice(0, Math.max(0, lines.length - TAIL_LINES));
  };
  server.stdout?.on("data", keep);
  server.stderr?.on("data", keep);
  server.on("error", (err) => lines.push(String(err.message)));
  // A test process that forgets stop() still ends; its exit hook kills the server.
  server.unref();
  (server.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (server.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null || server.signalCode !== null) return { server, ready: false, lastLines: lines };
    const client = new pg.Client({
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
      connectionTimeoutMillis: 1000,
    });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.end();
      return { server, ready: true, lastLines: lines };
    } catch {
      await client.end().catch(() => undefined);
      await sleep(100);
    }
  }
  lines.push(`not accepting connections on 127.0.0.1:${port} after ${READY_TIMEOUT_MS / 1000} s`);
  return { server, ready: false, lastLines: lines };
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
