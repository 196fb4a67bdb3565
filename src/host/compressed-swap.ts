import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { run, succeeds } from "../util/exec.js";
import { logger } from "../util/log.js";

/**
 * Compressed swap in memory (zram) for frozen clusters. A frozen cluster's pages are idle by
 * construction (no process of it runs), so the runtime pushes them into zram right after the
 * freeze (cgroups.ts swapOut): they stay in RAM, compressed ~4.5× (Go heaps, mostly), and come
 * back on the first touch after a thaw. Only zram: a swap file or partition would put tenants'
 * memory on a disk, so a host with any other swap gets no compression at all.
 *
 * The kernel's zram documentation (Documentation/admin-guide/blockdev/zram.rst) gives the
 * order: comp_algorithm, then disksize (the most it stores, uncompressed), then mem_limit
 * (the most RAM the compressed pages may take), then mkswap and swapon.
 */

export interface SwapDevice {
  name: string;
  type: string;
  sizeBytes: number;
  usedBytes: number;
}

export type CompressedSwap =
  | {
      state: "on";
      /** The zram devices swapped to ("/dev/zram0, /dev/zram1"). */
      device: string;
      algorithm: string;
      /** The most they store, uncompressed, and what they store now (/proc/swaps). */
      sizeBytes: number;
      usedBytes: number;
      /** Pages stored, uncompressed, and the RAM they take compressed (zram's mm_stat). */
      storedBytes: number;
      memoryUsedBytes: number;
    }
  | {
      state: "off";
      /** other-swap: the host swaps to a disk (never set up then); none: no swap; failed: setting up zram failed. */
      cause: "other-swap" | "none" | "failed";
      reason: string;
    };

/** Algorithms in the order they are chosen: lz4 decompresses fastest (a thaw's page faults), lzo-rle is the kernel's default. */
export const ALGORITHM_PREFERENCE = ["lz4", "lzo-rle", "lzo", "zstd"];
/** Uncompressed capacity of the device, against MemTotal: frozen clusters compress ~4.5×. */
const DISKSIZE_OF_MEMORY = 2;
/** The most RAM compressed pages may take, against MemTotal: past it pages stay uncompressed. */
const MEM_LIMIT_OF_MEMORY = 0.5;
/** Above the priority of any swap a distribution sets up (they use -2 and below by default). */
const SWAP_PRIORITY = 100;

/** /proc/swaps, parsed (sizes there are in KiB). */
export function parseSwaps(text: string): SwapDevice[] {
  return text
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && f[0])
    .map(([name, type, size, used]) => ({
      name: name!,
      type: type!,
      sizeBytes: Number(size) * 1024,
      usedBytes: Number(used) * 1024,
    }));
}

/** The algorithm to choose from zram's `comp_algorithm` ("lzo [lzo-rle] lz4"), or undefined when it offers none we know. */
export function chooseAlgorithm(offered: string): string | undefined {
  const names = offered.replace(/[[\]]/g, " ").trim().split(/\s+/);
  return ALGORITHM_PREFERENCE.find((a) => names.includes(a));
}

/** The algorithm zram uses now: the bracketed one. */
function currentAlgorithm(offered: string): string {
  return /\[([^\]]+)\]/.exec(offered)?.[1] ?? offered.trim();
}

const isZram = (name: string) => /^\/dev\/zram\d+$/.test(name);

/** What compressed swap the host has now, and why not when it has none (for `doctor` and the server's start). */
export async function compressedSwap(): Promise<CompressedSwap> {
  const swaps = parseSwaps(await readFile("/proc/swaps", "utf8").catch(() => ""));
  const other = swaps.filter((s) => !isZram(s.name));
  if (other.length)
    return {
      state: "off",
      cause: "other-swap",
      reason: `the host swaps to ${other.map((s) => s.name).join(", ")}, not only to memory: frozen clusters' memory would reach a disk`,
    };
  const zram = swaps.filter((s) => isZram(s.name));
  if (!zram.length) return { state: "off", cause: "none", reason: "no compressed swap (zram) is set up" };
  let storedBytes = 0;
  let memoryUsedBytes = 0;
  let algorithm = "";
  for (const z of zram) {
    const block = join("/sys/block", z.name.slice("/dev/".length));
    const mm = (await readFile(join(block, "mm_stat"), "utf8").catch(() => "")).trim().split(/\s+/).map(Number);
    storedBytes += mm[0] || 0;
    memoryUsedBytes += mm[2] || 0;
    algorithm ||= currentAlgorithm(await readFile(join(block, "comp_algorithm"), "utf8").catch(() => ""));
  }
  return {
    state: "on",
    device: zram.map((z) => z.name).join(", "),
    algorithm,
    sizeBytes: zram.reduce((sum, z) => sum + z.sizeBytes, 0),
    usedBytes: zram.reduce((sum, z) => sum + z.usedBytes, 0),
    storedBytes,
    memoryUsedBytes,
  };
}

/** The kernel's zram block devices ("zram0"), in use or not. */
async function zramDevices(): Promise<string[]> {
  return (await readdir("/sys/block").catch(() => [] as string[])).filter((n) => /^zram\d+$/.test(n));
}

/** A zram device not in use (disksize 0), adding one when the kernel has the module and none is free. */
async function freeZramDevice(): Promise<string | undefined> {
  const free = async () => {
    for (const name of await zramDevices()) {
      const size = (await readFile(join("/sys/block", name, "disksize"), "utf8").catch(() => "")).trim();
      if (size === "0") return name;
    }
    return undefined;
  };
  if (!existsSync("/sys/class/zram-control")) await succeeds("modprobe", ["zram", "num_devices=1"]);
  const found = await free();
  if (found || !existsSync("/sys/class/zram-control/hot_add")) return found;
  const added = (await readFile("/sys/class/zram-control/hot_add", "utf8").catch(() => "")).trim();
  return added ? `zram${added}` : undefined;
}

/** A zram device of `share` of the wanted size (the rest is already set up), as swap. */
async function setUpZram(share: number): Promise<CompressedSwap> {
  const name = await freeZramDevice();
  if (!name) return { state: "off", cause: "none", reason: "the kernel offers no zram device (module zram)" };
  const block = join("/sys/block", name);
  const algorithm = chooseAlgorithm(await readFile(join(block, "comp_algorithm"), "utf8"));
  if (algorithm) await writeFile(join(block, "comp_algorithm"), algorithm);
  await writeFile(join(block, "disksize"), String(Math.floor(totalmem() * DISKSIZE_OF_MEMORY * share)));
  await writeFile(join(block, "mem_limit"), String(Math.floor(totalmem() * MEM_LIMIT_OF_MEMORY * share)));
  await run("mkswap", [`/dev/${name}`]);
  await run("swapon", ["-p", String(SWAP_PRIORITY), `/dev/${name}`]);
  logger.info({ device: `/dev/${name}`, algorithm }, "compressed swap in memory set up for frozen clusters");
  return compressedSwap();
}

let ensured: Promise<CompressedSwap> | undefined;

/**
 * Compressed swap for frozen clusters, set up once (a zram device as swap) when the host has
 * no swap at all; a host that swaps elsewhere is left as it is (and gets no compression).
 * Every cluster cgroup keeps its memory out of swap while it runs (cgroups.ts keepFromSwap),
 * so turning swap on changes nothing for running clusters or their pods.
 */
export function ensureCompressedSwap(): Promise<CompressedSwap> {
  ensured ??= (async () => {
    const now = await compressedSwap();
    if (now.state === "off" && now.cause === "other-swap") return now;
    // A smaller device set up before (by hand, or on a host with less memory) is topped up.
    const missing = 1 - (now.state === "on" ? now.sizeBytes / (totalmem() * DISKSIZE_OF_MEMORY) : 0);
    if (missing < 0.1) return now;
    try {
      return await setUpZram(missing);
    } catch (err) {
      return now.state === "on"
        ? now
        : {
            state: "off" as const,
            cause: "failed" as const,
            reason: `setting up zram failed: ${(err as Error).message}`,
          };
    }
  })();
  return ensured;
}

/**
 * Whether ensureCompressedSwap would have compressed swap, given the host's swap now (read by
 * the caller when it has it): on already, or no swap at all and a kernel with zram.
 */
export async function compressedSwapPossible(now?: CompressedSwap): Promise<boolean> {
  now ??= await compressedSwap();
  if (now.state === "on") return true;
  if (now.cause === "other-swap") return false;
  const modules = `/lib/modules/${(await readFile("/proc/sys/kernel/osrelease", "utf8").catch(() => "")).trim()}`;
  return (
    existsSync("/sys/class/zram-control") ||
    (await zramDevices()).length > 0 ||
    existsSync(join(modules, "kernel/drivers/block/zram"))
  );
}
