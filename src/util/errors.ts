/**
 * One error hierarchy for the whole project. Every error carries a stable `type`
 * so callers (CLI exit codes, HTTP status mapping) never parse messages.
 */
export type ErrorType =
  | "invalid-input"
  | "not-found"
  | "conflict"
  /** An offered Kubernetes version whose binaries are not built on this host; the message names the command that builds them. */
  | "not-installed"
  | "forbidden"
  | "capacity"
  | "setup"
  | "host"
  | "child-process"
  | "runtime"
  | "timeout";

export class TempkubeError extends Error {
  readonly type: ErrorType;
  constructor(type: ErrorType, message: string, options?: { cause?: unknown }) {
    super(redactSecrets(message), options);
    this.type = type;
    this.name = "TempkubeError";
  }
}

/** A child process failed; the message ends with the last lines it printed. */
export class ChildProcessError extends TempkubeError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly lastLines: string[];
  readonly logFile?: string;
  constructor(args: {
    command: string;
    exitCode: number | null;
    signal?: string | null;
    lastLines: string[];
    logFile?: string;
  }) {
    const how = args.signal ? `was killed by ${args.signal}` : `exited with code ${args.exitCode}`;
    const where = args.logFile ? `\nfull log: ${args.logFile}` : "";
    const tail = args.lastLines.length ? `\nlast lines:\n  ${args.lastLines.join("\n  ")}` : "";
    super("child-process", `${args.command} ${how}${where}${tail}`);
    this.name = "ChildProcessError";
    this.command = args.command;
    this.exitCode = args.exitCode;
    this.lastLines = args.lastLines;
    this.logFile = args.logFile;
  }
}

const SECRET_PATTERNS: RegExp[] = [
  /(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----)/g,
  /((?:token|password|passwd|secret)["']?\s*[:=]\s*["']?)[^\s"',]+/gi,
  /(bearer\s+)[A-Za-z0-9._~+/=-]+/gi,
  /(\/\/[^:/@\s]+:)[^@\s]+(@)/g,
];

/** Removes private keys, tokens and URL passwords from text meant for logs or errors. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (_m, a: string, b?: string) => `${a}[redacted]${typeof b === "string" ? b : ""}`);
  }
  return out;
}
