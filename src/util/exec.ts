import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { ChildProcessError } from "./errors.js";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Appends combined stdout/stderr here; the path is named in the error on failure. */
  logFile?: string;
  input?: string | Buffer;
  timeoutMs?: number;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

const TAIL_LINES = 20;

/**
 * Spawns a helper that must not outlive this process (a template's containerd, a bare
 * apiserver, the short-lived push registry): `setpriv --pdeathsig KILL` execs the command
 * in its place (same pid) with the kernel's parent-death signal set, so a tempkube process
 * killed outright (a test's server killed mid-build) takes it along instead of orphaning it.
 * Never for a cluster's components, which outlive the server on purpose (supervisor.ts).
 */
export function spawnTiedToParent(command: string, args: string[], options: SpawnOptions): ChildProcess {
  return spawn("setpriv", ["--pdeathsig", "KILL", "--", command, ...args], options);
}

/** Runs a command to completion. Failure throws a ChildProcessError carrying its last lines. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let log: WriteStream | undefined;
    if (options.logFile) {
      log = createWriteStream(options.logFile, { flags: "a" });
      log.write(`$ ${[command, ...args].join(" ")}\n`);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const tail: string[] = [];
    const keepTail = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) {
        if (line.trim()) tail.push(line);
      }
      if (tail.length > TAIL_LINES * 4) tail.splice(0, tail.length - TAIL_LINES);
    };
    child.stdout.on("data", (c: Buffer) => {
      out.push(c);
      log?.write(c);
      keepTail(c);
    });
    child.stderr.on("data", (c: Buffer) => {
      err.push(c);
      log?.write(c);
      keepTail(c);
    });
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs) {
      timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    }
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      log?.end();
      reject(
        new ChildProcessError({ command, exitCode: null, lastLines: [String(e.message)], logFile: options.logFile }),
      );
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      log?.end();
      const result = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? -1 };
      if (signal || !(options.okCodes ?? [0]).includes(code ?? -1)) {
        reject(
          new ChildProcessError({
            command: [command, ...args].join(" ").slice(0, 300),
            exitCode: code,
            signal,
            lastLines: tail.slice(-TAIL_LINES),
            logFile: options.logFile,
          }),
        );
      } else {
        resolve(result);
      }
    });
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/** Runs a command and reports only whether it succeeded. */
export async function succeeds(command: string, args: string[], options: RunOptions = {}): Promise<boolean> {
  try {
    await run(command, args, options);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL to a child of this process; resolves once it has exited (at once if it already had). */
export function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}
