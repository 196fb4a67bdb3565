import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { TempkubeError } from "../../util/errors.js";
import { withFileLock } from "../../util/lock.js";
import { HOST_STATE_DIR } from "../../util/paths.js";
import { MAX_CLUSTER_INDEX } from "./network.js";

/** Who holds an address range: a cluster of one tempkube instance (its data dir). */
export interface RangeOwner {
  dataDir: string;
  clusterId: string;
}

export interface RangeReservation extends RangeOwner {
  index: number;
  reservedAt: string;
}

/** What reserve() found left by an owner that is gone, for the caller to sweep before reuse. */
export interface StaleReservation extends RangeReservation {
  /** Another live cluster (of another data dir) has the same id: names derived from the id are its. */
  idInUse: boolean;
}

function normalised(owner: RangeOwner): RangeOwner {
  return { dataDir: resolve(owner.dataDir), clusterId: owner.clusterId };
}

function sameOwner(a: RangeOwner, b: RangeOwner): boolean {
  return resolve(a.dataDir) === resolve(b.dataDir) && a.clusterId === b.clusterId;
}

/**
 * Host-wide reservations of cluster indexes (index n owns bridge tkb<n>, veths tkv<n>n<k>,
 * 172.30.<n>.0/24 and 10.<128+n>.0.0/16). Link names and addresses belong to the host, not
 * to a data dir, so every tempkube instance reserves in the same place, under one lock, and
 * each reservation names its owner. A reservation whose owner's cluster directory is gone (a
 * test's temporary data dir deleted with its clusters still on the books) is stale and is
 * reclaimed by the next reservation, so ranges do not leak forever.
 *
 * Cluster ids are host-wide too: network namespaces (tk-<id>-<node>) and firewall rule tags
 * (tempkube:<id>) are named by id, so an id a live cluster of another data dir holds is refused.
 */
export class AddressRanges {
  constructor(private readonly dir = join(HOST_STATE_DIR, "address-ranges")) {}

  private file(index: number): string {
    return join(this.dir, `${index}.json`);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(join(this.dir, ".lock"), "the host's address ranges", fn);
  }

  /** Whether the owner's cluster still exists (its directory under its data dir). */
  static alive(owner: RangeOwner): boolean {
    return existsSync(join(owner.dataDir, "clusters", owner.clusterId));
  }

  async all(): Promise<RangeReservation[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const found: RangeReservation[] = [];
    for (const name of names.filter((n) => /^\d+\.json$/.test(n))) {
      const text = await readFile(join(this.dir, name), "utf8").catch(() => "");
      try {
        const r = JSON.parse(text) as RangeReservation;
        if (r.index === Number(name.slice(0, -5)) && r.dataDir && r.clusterId) found.push(r);
      } catch {
        // A reservation is written to a temporary file and renamed, so it is never half-written;
        // an unreadable one was put there by hand and counts as taken (never reused blindly).
        found.push({ index: Number(name.slice(0, -5)), dataDir: "(unreadable)", clusterId: name, reservedAt: "" });
      }
    }
    return found.sort((a, b) => a.index - b.index);
  }

  private async write(r: RangeReservation): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file(r.index)}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(r, null, 2)}\n`);
    await rename(tmp, this.file(r.index));
  }

  /**
   * The owner's index: the one it holds already (a retried provision), else the lowest free
   * one. onStale runs (under the lock) for a stale reservation before its index is reused.
   */
  async reserve(owner: RangeOwner, onStale?: (stale: StaleReservation) => Promise<void>): Promise<number> {
    const me = normalised(owner);
    await mkdir(this.dir, { recursive: true });
    return this.locked(async () => {
      const all = await this.all();
      const held = all.find((r) => sameOwner(r, me));
      if (held) return held.index;
      const clash = all.find((r) => r.clusterId === me.clusterId && AddressRanges.alive(r));
      if (clash) {
        throw new TempkubeError(
          "conflict",
          `cluster id ${me.clusterId} is in use on this host by the tempkube instance with data dir ${clash.dataDir}; choose another id`,
        );
      }
      for (let index = 1; index <= MAX_CLUSTER_INDEX; index++) {
        const taken = all.find((r) => r.index === index);
        if (taken && (taken.reservedAt === "" || AddressRanges.alive(taken))) continue;
        if (taken) {
          const idInUse = all.some((r) => r !== taken && r.clusterId === taken.clusterId && AddressRanges.alive(r));
          await onStale?.({ ...taken, idInUse });
        }
        await this.write({ ...me, index, reservedAt: new Date().toISOString() });
        return index;
      }
      throw new TempkubeError(
        "host",
        `this host holds ${MAX_CLUSTER_INDEX} clusters already (all tempkube instances together); no address range is free`,
      );
    });
  }

  /** The index this owner holds, if any. */
  async lookup(owner: RangeOwner): Promise<number | undefined> {
    return (await this.all()).find((r) => sameOwner(r, owner))?.index;
  }

  /** Whether a live cluster of another data dir has this id (so names derived from the id are not the owner's). */
  async idHeldElsewhere(owner: RangeOwner): Promise<boolean> {
    return (await this.all()).some(
      (r) => r.clusterId === owner.clusterId && !sameOwner(r, owner) && AddressRanges.alive(r),
    );
  }

  /** Gives the index back, only if this owner holds it. */
  async release(owner: RangeOwner, index: number | undefined): Promise<void> {
    if (index === undefined) return;
    await this.locked(async () => {
      const r = (await this.all()).find((x) => x.index === index);
      if (r && sameOwner(r, owner)) await rm(this.file(index), { force: true });
    });
  }

  /**
   * Reservations made before they were host-wide (`<dataDir>/indexes/<n>/cluster`) move here,
   * if their cluster still exists and the index is free; the old entries are removed either way
   * once read, so this runs once per data dir.
   */
  async adoptLegacy(dataDir: string): Promise<void> {
    const legacy = join(dataDir, "indexes");
    if (!existsSync(legacy)) return;
    await mkdir(this.dir, { recursive: true });
    await this.locked(async () => {
      const all = await this.all();
      for (const entry of await readdir(legacy).catch(() => [] as string[])) {
        const index = Number(entry);
        const clusterId = (await readFile(join(legacy, entry, "cluster"), "utf8").catch(() => "")).trim();
        const owner = normalised({ dataDir, clusterId });
        const taken = all.find((r) => r.index === index);
        if (
          clusterId &&
          Number.isInteger(index) &&
          AddressRanges.alive(owner) &&
          (!taken || (taken.reservedAt !== "" && !AddressRanges.alive(taken)))
        ) {
          await this.write({ ...owner, index, reservedAt: new Date().toISOString() });
        }
        await rm(join(legacy, entry), { recursive: true, force: true });
      }
      await rm(legacy, { recursive: true, force: true });
    });
  }
}
