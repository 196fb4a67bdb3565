import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A kernel setting tempkube wants at least this high, and why (scripts/host-sysctls.conf). */
export interface SysctlSetting {
  key: string;
  value: number;
  why: string;
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const HOST_SYSCTLS_FILE = join(REPO_ROOT, "scripts", "host-sysctls.conf");
/** Where scripts/setup writes them so that they hold after a reboot. */
export const PERSISTED_SYSCTLS_FILE = "/etc/sysctl.d/60-tempkube.conf";

/** The one list, shared with scripts/setup: `key = value` lines, each after a comment saying why. */
export function parseSysctls(text: string): SysctlSetting[] {
  const out: SysctlSetting[] = [];
  let why = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#")) {
      why = line.replace(/^#\s*/, "");
      continue;
    }
    const m = /^([a-z0-9_.-]+)\s*=\s*(\d+)$/.exec(line);
    if (m) out.push({ key: m[1], value: Number(m[2]), why });
    else if (line) throw new Error(`${HOST_SYSCTLS_FILE}: not "key = number": ${line}`);
    why = "";
  }
  return out;
}

export async function wantedSysctls(): Promise<SysctlSetting[]> {
  return parseSysctls(await readFile(HOST_SYSCTLS_FILE, "utf8"));
}

/** A sysctl's current value, or undefined where the kernel has none (module not loaded). */
export async function readSysctl(key: string): Promise<number | undefined> {
  const text = await readFile(`/proc/sys/${key.replaceAll(".", "/")}`, "utf8").catch(() => undefined);
  const n = Number(text?.trim().split(/\s+/)[0]);
  return text !== undefined && Number.isFinite(n) ? n : undefined;
}

/** The command that sets it now, and where setup makes it last. */
export function sysctlFix(key: string, value: number): string {
  return `sysctl -w ${key}=${value} (and scripts/setup to keep it across reboots)`;
}
