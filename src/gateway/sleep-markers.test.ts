import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GatewayPaths, type GatewayActivity } from "./gateway-files.js";
import { GatewaySleepFiles } from "./sleep-markers.js";

/** Resolves with the next id reported, or rejects after `ms` (a deadline, not a timing assertion). */
function nextWake(queue: string[], waiters: ((id: string) => void)[], ms = 5000): Promise<string> {
  const queued = queue.shift();
  if (queued !== undefined) return Promise.resolve(queued);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no wake request reported within ${ms} ms`)), ms);
    waiters.push((id) => {
      clearTimeout(timer);
      resolve(id);
    });
  });
}

/** As the gateway writes a request: whole, then renamed into place. */
async function gatewayRequestsWake(paths: GatewayPaths, id: string): Promise<void> {
  await mkdir(paths.wakeDir, { recursive: true });
  const temporary = join(paths.wakeDir, `.${id}.tmp`);
  await writeFile(temporary, "");
  await rename(temporary, paths.wake(id));
}

describe("gateway sleep files (markers, wake requests) in a temporary data dir", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkq-sleep-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes, lists and clears sleeping markers whole, leaving no temporary file", async () => {
    const paths = new GatewayPaths(join(dir, "markers"));
    const files = new GatewaySleepFiles(paths, async () => undefined);
    assert.deepEqual(await files.sleepingMarkers(), [], "no directory yet: none");
    await files.markSleeping("abc123");
    await files.markSleeping("def456");
    await files.markSleeping("abc123");
    assert.ok(existsSync(paths.sleeping("abc123")));
    assert.deepEqual((await files.sleepingMarkers()).sort(), ["abc123", "def456"]);
    assert.deepEqual((await readdir(paths.sleepingDir)).sort(), ["abc123", "def456"], "no temporary file left");
    await files.clearSleeping("abc123");
    await files.clearSleeping("abc123");
    assert.deepEqual(await files.sleepingMarkers(), ["def456"]);
  });

  it("reports a request made before it started and one made while it runs, each removed once handled", async () => {
    const paths = new GatewayPaths(join(dir, "wakes"));
    await gatewayRequestsWake(paths, "early1");
    // A rescan an hour away: what is reported below comes from the scan at start and the watch.
    const files = new GatewaySleepFiles(paths, async () => undefined, 3_600_000);
    const queue: string[] = [];
    const waiters: ((id: string) => void)[] = [];
    const stop = files.wakeRequests((id) => {
      const waiter = waiters.shift();
      if (waiter) waiter(id);
      else queue.push(id);
    });
    try {
      assert.equal(await nextWake(queue, waiters), "early1", "written while no server ran");
      await files.wakeHandled("early1");
      assert.ok(!existsSync(paths.wake("early1")));

      await gatewayRequestsWake(paths, "later1");
      // A request may be reported more than once (the contract allows it); wait for this one.
      let id = await nextWake(queue, waiters);
      while (id !== "later1") id = await nextWake(queue, waiters);
      assert.equal(id, "later1", "written while it runs, seen by the watch");
      await files.wakeHandled("later1");
      assert.deepEqual(await readdir(paths.wakeDir), []);
      assert.ok(!queue.includes(".later1.tmp"), "a writer's temporary file is no request");
    } finally {
      stop();
    }
    await gatewayRequestsWake(paths, "after1");
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!queue.includes("after1"), "nothing is reported after unsubscribing");
  });

  it("reports a request again at each rescan while it is there: a missed watch event costs a delay only", async () => {
    const paths = new GatewayPaths(join(dir, "rescan"));
    const files = new GatewaySleepFiles(paths, async () => undefined, 50);
    const seen: string[] = [];
    const stop = files.wakeRequests((id) => seen.push(id));
    try {
      await gatewayRequestsWake(paths, "again1");
      const deadline = Date.now() + 5000;
      // The watch reports a rename into the directory once; more reports come from rescans.
      while (seen.filter((id) => id === "again1").length < 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.filter((id) => id === "again1").length >= 3, `reported ${seen.length} times`);
      await files.wakeHandled("again1");
      // A scan that read the directory before the removal has surely reported by then.
      await new Promise((r) => setTimeout(r, 150));
      const reported = seen.length;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.length, reported, "a handled request is reported no more");
    } finally {
      stop();
    }
  });

  it("passes the gateway's activity through", async () => {
    const activity: GatewayActivity = { since: 1, clusters: { abc123: { lastActiveAt: 2, open: 1 } } };
    assert.deepEqual(await new GatewaySleepFiles(new GatewayPaths(dir), async () => activity).activity(), activity);
    assert.equal(await new GatewaySleepFiles(new GatewayPaths(dir), async () => undefined).activity(), undefined);
  });
});
