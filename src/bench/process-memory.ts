import { readFile } from "node:fs/promises";

/** What the processes of one component (one program: kube-apiserver, kubelet, …) hold and use. */
export interface ComponentUse {
  processes: number;
  /** RssAnon: memory that is theirs alone. */
  privateMiB: number;
  /** VmSwap: pages in swap (for a frozen cluster, compressed swap in memory: host/compressed-swap.ts). */
  swappedMiB: number;
  /** Proportional set size: private memory plus a share of each page they share with others. */
  pssMiB: number;
  /** VmRSS: counts binaries' pages, which every cluster on the host shares through the page cache. */
  rssMiB: number;
  /** CPU time (user + system) since the process started, in seconds. */
  cpuSeconds: number;
}

/** /proc/<pid>/stat counts CPU time in clock ticks: USER_HZ, 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/**
 * The processes' use, by component: the program's file name (the first word of its command
 * line), with the shell loops that supervise each component as "supervisor". Processes that
 * are gone by the time they are read count for nothing.
 */
export async function componentUse(pids: number[]): Promise<Record<string, ComponentUse>> {
  const out: Record<string, ComponentUse> = {};
  for (const pid of pids) {
    const [status, rollup, stat, cmdline] = await Promise.all(
      ["status", "smaps_rollup", "stat", "cmdline"].map((f) => readFile(`/proc/${pid}/${f}`, "utf8").catch(() => "")),
    );
    if (!status) continue;
    const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    // After the command's name, which may hold spaces and parentheses: state, then 11 fields to utime, stime.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    const program = cmdline.split("\0")[0].split("/").pop() || "?";
    const name = /^(ba)?sh$/.test(program) ? "supervisor" : program;
    const c = (out[name] ??= { processes: 0, privateMiB: 0, swappedMiB: 0, pssMiB: 0, rssMiB: 0, cpuSeconds: 0 });
    c.processes++;
    c.privateMiB += kb(status, "RssAnon") / 1024;
    c.swappedMiB += kb(status, "VmSwap") / 1024;
    c.rssMiB += kb(status, "VmRSS") / 1024;
    c.pssMiB += kb(rollup, "Pss") / 1024;
    c.cpuSeconds += ticks / TICKS_PER_SECOND;
  }
  return out;
}

/** The total over components. */
export function totalUse(use: Record<string, ComponentUse>): ComponentUse {
  const t: ComponentUse = { processes: 0, privateMiB: 0, swappedMiB: 0, pssMiB: 0, rssMiB: 0, cpuSeconds: 0 };
  for (const c of Object.values(use)) for (const k of Object.keys(t) as (keyof ComponentUse)[]) t[k] += c[k];
  return t;
}

/**
 * Per component, averaged over several clusters: memory at the end of a window and CPU over
 * it (cores: the CPU seconds between the two samples over the window's length).
 */
export function perClusterByComponent(
  before: Record<string, ComponentUse>[],
  after: Record<string, ComponentUse>[],
  windowSeconds: number,
): { component: string; privateMiB: number; pssMiB: number; rssMiB: number; cores: number }[] {
  const n = Math.max(1, after.length);
  const names = [...new Set(after.flatMap((u) => Object.keys(u)))];
  return names
    .map((component) => {
      const sum = (k: keyof ComponentUse, of: Record<string, ComponentUse>[]) =>
        of.reduce((s, u) => s + (u[component]?.[k] ?? 0), 0);
      return {
        component,
        privateMiB: sum("privateMiB", after) / n,
        pssMiB: sum("pssMiB", after) / n,
        rssMiB: sum("rssMiB", after) / n,
        cores: Math.max(0, sum("cpuSeconds", after) - sum("cpuSeconds", before)) / n / windowSeconds,
      };
    })
    .sort((a, b) => b.privateMiB - a.privateMiB);
}

/** A table of perClusterByComponent's rows, indented for the bench's output. */
export function formatComponents(rows: ReturnType<typeof perClusterByComponent>, indent = "    "): string {
  const head = `${indent}${"component".padEnd(26)}${["private", "PSS", "RSS", "CPU"].map((h) => h.padStart(12)).join("")}\n`;
  return (
    head +
    rows
      .map(
        (r) =>
          `${indent}${r.component.padEnd(26)}` +
          [r.privateMiB, r.pssMiB, r.rssMiB].map((m) => `${m.toFixed(1).padStart(8)} MiB`).join("") +
          `${r.cores.toFixed(4).padStart(7)} core`,
      )
      .join("\n") +
    "\n"
  );
}
