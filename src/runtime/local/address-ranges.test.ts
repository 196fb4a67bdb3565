import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { AddressRanges, type StaleReservation } from "./address-ranges.js";

const scratch = await mkdtemp(join(tmpdir(), "tempkube-ranges-"));
after(() => rm(scratch, { recursive: true, force: true }));

/** A data dir holding the given clusters (reservations count as live while the cluster's directory exists). */
async function dataDir(name: string, clusters: string[]): Promise<string> {
  const dir = join(scratch, name);
  for (const id of clusters) await mkdir(join(dir, "clusters", id), { recursive: true });
  return dir;
}

it("gives clusters of different data dirs different indexes, and each its own again on retry", async () => {
  const ranges = new AddressRanges(join(scratch, "r1"));
  const a = await dataDir("a1", ["one"]);
  const b = await dataDir("b1", ["two"]);
  const [ia, ib] = await Promise.all([
    ranges.reserve({ dataDir: a, clusterId: "one" }),
    ranges.reserve({ dataDir: b, clusterId: "two" }),
  ]);
  assert.notEqual(ia, ib);
  assert.equal(await ranges.reserve({ dataDir: a, clusterId: "one" }), ia);
  assert.equal(await ranges.lookup({ dataDir: b, clusterId: "two" }), ib);
  const record = JSON.parse(await readFile(join(scratch, "r1", `${ia}.json`), "utf8"));
  assert.deepEqual([record.dataDir, record.clusterId], [a, "one"], "the reservation names its owner");
});

it("refuses an id a live cluster of another data dir has, and says whose", async () => {
  const ranges = new AddressRanges(join(scratch, "r2"));
  const a = await dataDir("a2", ["same"]);
  const b = await dataDir("b2", ["same"]);
  await ranges.reserve({ dataDir: a, clusterId: "same" });
  await assert.rejects(ranges.reserve({ dataDir: b, clusterId: "same" }), (err: Error) => err.message.includes(a));
  assert.equal(await ranges.idHeldElsewhere({ dataDir: b, clusterId: "same" }), true);
  assert.equal(await ranges.idHeldElsewhere({ dataDir: a, clusterId: "same" }), false);
});

it("releases only the owner's reservation", async () => {
  const ranges = new AddressRanges(join(scratch, "r3"));
  const a = await dataDir("a3", ["one"]);
  const b = await dataDir("b3", ["one"]);
  const index = await ranges.reserve({ dataDir: a, clusterId: "one" });
  await ranges.release({ dataDir: b, clusterId: "one" }, index);
  assert.equal(await ranges.lookup({ dataDir: a, clusterId: "one" }), index);
  await ranges.release({ dataDir: a, clusterId: "one" }, index);
  assert.equal(await ranges.lookup({ dataDir: a, clusterId: "one" }), undefined);
});

it("reclaims the range of a cluster whose data dir is gone, telling the caller what to sweep", async () => {
  const ranges = new AddressRanges(join(scratch, "r4"));
  const gone = await dataDir("gone4", ["old"]);
  const index = await ranges.reserve({ dataDir: gone, clusterId: "old" });
  await rm(gone, { recursive: true });
  const live = await dataDir("live4", ["new"]);
  const swept: StaleReservation[] = [];
  const reused = await ranges.reserve({ dataDir: live, clusterId: "new" }, async (s) => {
    swept.push(s);
  });
  assert.equal(reused, index);
  assert.deepEqual(
    swept.map((s) => [s.index, s.clusterId, s.dataDir, s.idInUse]),
    [[index, "old", gone, false]],
  );
});

it("moves a data dir's own reservations (from before they were host-wide) into the shared place", async () => {
  const ranges = new AddressRanges(join(scratch, "r5"));
  const a = await dataDir("a5", ["kept"]);
  await mkdir(join(a, "indexes", "7"), { recursive: true });
  await writeFile(join(a, "indexes", "7", "cluster"), "kept");
  await mkdir(join(a, "indexes", "8"), { recursive: true });
  await writeFile(join(a, "indexes", "8", "cluster"), "deleted-long-ago");
  await ranges.adoptLegacy(a);
  assert.equal(await ranges.lookup({ dataDir: a, clusterId: "kept" }), 7);
  assert.deepEqual(
    (await ranges.all()).map((r) => r.index),
    [7],
  );
  assert.deepEqual(await readdir(a), ["clusters"], "the old reservations are gone");
});
