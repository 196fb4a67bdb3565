import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, rename, writeFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

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
stopping=0 child= delay=1
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
  echo "tempkube-supervise: $name exited with code $code; restarting in \${delay}s" >>"$log"
  sleep "$delay"; [ "$delay" -lt 16 ] && delay=$((delay * 2))
done
rm -f "$pidfile" "$pidfile.child"
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
  constructor(private readonly runDir: string, private readonly logDir: string) {}

  pidFile(name: string): string {
    return join(this.runDir, `${name}.pid`);
  }

  logFile(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  async start(c: ComponentCommand): Promise<void> {
    if (await this.isRunning(c.name)) return;
    const script = await this.installScript();
    const out = openSync(this.logFile(c.name), "a");
    const child = spawn("/bin/bash", [script, c.name, this.logFile(c.name), this.pidFile(c.name), c.cgroup, c.netnsPath ?? "-", "--", c.command, ...c.args], {
      detached: true,
      stdio: ["ignore", out, out],
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...c.env },
    });
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
        try { process.kill(pid, "SIGTERM"); } catch { /* gone */ }
      }
    }
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const alive = await Promise.all(names.map((n) => this.isRunning(n)));
      if (!alive.some(Boolean)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const name of names) await rm(this.pidFile(name), { force: true });
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
