import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, rename, writeFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { TempkubeError } from "../../util/errors.js";
import { abortableBy, throwIfAborted } from "./wait.js";

/**
 * Cluster components run under a tiny bash supervisor each, detached from the tempkube
 * process (own session, own cgroup): they survive the server and a later process adopts
 * them by pid file. The supervisor restarts a component that crashes and stops it on
 * SIGTERM. bash costs ~3 MiB per component, far less than a Node supervisor would.
 */
export const SUPERVISE_SH = `#!/bin/bash
# tempkube component supervisor: supervise.sh NAME LOG PIDFILE CGROUP NETNS -- COMMAND...
name=$1 log=$2 pidfile=$3 cgroup=$4 netns=$5; shift 6
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [ -f "$h$cgroup/cgroup.procs" ] && echo $$ > "$h$cgroup/cgroup.procs" 2>/dev/null
done
echo $$ > "$pidfile"
stopping=0 child= delay=1 exits=0
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
while [ "$stopping" = 0 ]; do
  started=$(date +%s)
  if [ "$netns" = - ]; then "$@" >>"$log" 2>&1 & else nsenter --net="$netns" -- "$@" >>"$log" 2>&1 & fi
  child=$!
  echo "$child" > "$pidfile.child"
  wait "$child"; code=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
  [ "$stopping" = 1 ] && break
  [ $(( $(date +%s) - started )) -gt 30 ] && delay=1
  exits=$((exits + 1)); echo "$exits $code" > "$pidfile.exits"
  echo "tempkube-supervise: $name exited with code $code; restarting in \${delay}s" >>"$log"
  sleep "$delay"; [ "$delay" -lt 16 ] && delay=$((delay * 2))
done
rm -f "$pidfile" "$pidfile.child" "$pidfile.exits"
`;

export interface ComponentCommand {
  name: string;
  command: string;
  args: string[];
  /** Network namespace path, or undefined for the host namespace. */
  netnsPath?: string;
  /** cgroup path (relative to each hierarchy's root) the component runs in. */
  cgroup: string;
  env?: NodeJS.ProcessEnv;
}

export class Supervisor {
  constructor(
    private readonly runDir: string,
    private readonly logDir: string,
  ) {}

  pidFile(name: string): string {
    return join(this.runDir, `${name}.pid`);
  }

  logFile(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  async start(c: ComponentCommand): Promise<void> {
    if (await this.isRunning(c.name)) return;
    // Exits counted by a supervisor of an earlier boot are not this one's.
    await rm(this.exitsFile(c.name), { force: true });
    throwIfAborted();
    const script = await this.installScript();
    const out = openSync(this.logFile(c.name), "a");
    const child = spawn(
      "/bin/bash",
      [
        script,
        c.name,
        this.logFile(c.name),
        this.pidFile(c.name),
        c.cgroup,
        c.netnsPath ?? "-",
        "--",
        c.command,
        ...c.args,
      ],
      {
        detached: true,
        stdio: ["ignore", out, out],
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...c.env },
      },
    );
    closeSync(out);
    child.unref();
    await writeFile(this.pidFile(c.name), String(child.pid));
  }

  /**
   * bash reads a script as it runs it, so the file is never rewritten in place: a new
   * version goes in by rename (a new inode), and only when it differs.
   */
  private async installScript(): Promise<string> {
    const script = join(this.runDir, "supervise.sh");
    if ((await readFile(script, "utf8").catch(() => "")) !== SUPERVISE_SH) {
      await writeFile(`${script}.${process.pid}`, SUPERVISE_SH, { mode: 0o755 });
      await rename(`${script}.${process.pid}`, script);
    }
    return script;
  }

  private exitsFile(name: string): string {
    return `${this.pidFile(name)}.exits`;
  }

  /** How often the running supervisor has seen its component exit, and the last exit code. */
  async exits(name: string): Promise<{ count: number; lastCode?: number }> {
    const [count, code] = (await readFile(this.exitsFile(name), "utf8").catch(() => "")).trim().split(" ").map(Number);
    return Number.isInteger(count) ? { count, lastCode: Number.isInteger(code) ? code : undefined } : { count: 0 };
  }

  async pid(name: string, which: "supervisor" | "child" = "supervisor"): Promise<number | undefined> {
    const file = which === "supervisor" ? this.pidFile(name) : `${this.pidFile(name)}.child`;
    const text = await readFile(file, "utf8").catch(() => "");
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** A supervisor is ours when its pid is alive and its command line names our pid file. */
  async isRunning(name: string): Promise<boolean> {
    const pid = await this.pid(name);
    if (!pid) return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    return cmdline.includes(this.pidFile(name));
  }

  /** Asks every supervisor to stop its component; returns once they are gone or the timeout passes. */
  async stopAll(timeoutMs = 10_000): Promise<void> {
    const names = await this.names();
    for (const name of names) {
      const pid = await this.pid(name);
      if (pid && (await this.isRunning(name))) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          /* gone */
        }
      }
    }
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const alive = await Promise.all(names.map((n) => this.isRunning(n)));
      if (!alive.some(Boolean)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const name of names) {
      await rm(this.pidFile(name), { force: true });
      await rm(this.exitsFile(name), { force: true });
    }
  }

  async names(): Promise<string[]> {
    const files = await readdir(this.runDir).catch(() => [] as string[]);
    return files.filter((f) => f.endsWith(".pid")).map((f) => f.slice(0, -4));
  }

  async lastLines(name: string, n = 15): Promise<string[]> {
    const text = await readFile(this.logFile(name), "utf8").catch(() => "");
    return text.split("\n").filter(Boolean).slice(-n);
  }
}

/**
 * Exits of one component during a boot that mean it will not come up by itself. The
 * supervisor restarts it after 1, 2, then 4 s, so the third exit comes ~3 s after the
 * first; a component that merely started too early exits once, not three times.
 */
export const CRASH_LOOP_EXITS = 3;
const CRASH_WATCH_INTERVAL_MS = 200;

/** A component kept exiting during a boot; the message ends with its last log lines. */
export class CrashLoopError extends TempkubeError {
  constructor(
    readonly component: string,
    readonly exits: number,
    readonly lastCode: number | undefined,
    readonly lastLines: string[],
  ) {
    super(
      "runtime",
      `${component} exited ${exits} times during the boot${lastCode === undefined ? "" : ` (last exit code ${lastCode})`}; ` +
        "it will not come up by itself",
    );
    this.name = "CrashLoopError";
  }
}

/**
 * Runs a boot, ending it as soon as a component it started crash-loops: every waitFor in it
 * throws the CrashLoopError at its next poll, so the boot fails in seconds naming the
 * component, instead of waiting out its whole ready timeout (the supervisor would restart
 * the component forever).
 */
export async function failOnCrashLoop<T>(sup: Supervisor, boot: () => Promise<T>): Promise<T> {
  const aborter = new AbortController();
  // Exits a running supervisor counted before this boot are not this boot's.
  const before = new Map<string, number>();
  for (const name of await sup.names()) if (await sup.isRunning(name)) before.set(name, (await sup.exits(name)).count);
  let watching = true;
  const watch = (async () => {
    while (watching) {
      for (const name of await sup.names()) {
        const { count, lastCode } = await sup.exits(name);
        const exits = count - (before.get(name) ?? 0);
        if (exits >= CRASH_LOOP_EXITS && (await sup.isRunning(name))) {
          const lines = (await sup.lastLines(name, 40)).filter((l) => !l.startsWith("tempkube-supervise:")).slice(-12);
          aborter.abort(new CrashLoopError(name, exits, lastCode, lines));
          return;
        }
      }
      await new Promise((r) => setTimeout(r, CRASH_WATCH_INTERVAL_MS));
    }
  })().catch(() => undefined); // a run directory removed underneath (destroy) only ends the watch
  try {
    const result = await abortableBy(aborter.signal, boot);
    // A wait that tolerates failure (pods settling after a start) may have swallowed it.
    aborter.signal.throwIfAborted();
    return result;
  } finally {
    watching = false;
    await watch;
  }
}
