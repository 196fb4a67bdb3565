import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ClusterRecord } from "../core/cluster-record.js";
import { IDLE_CHECK_MS } from "../core/idle.js";
import { ClusterService } from "../service/cluster-service.js";
import { Store } from "../store/store.js";
import { FakeGatewayLink } from "../testing/fake-gateway-link.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { LifetimeController } from "./lifetime-controller.js";

const owner = unlimitedTenant;

/** A driver whose freezes wait until released: a create arriving while a freeze is under way. */
class SlowFreezeDriver extends FakeDriver {
  private release: (() => void) | undefined;
  private begin: (() => void) | undefined;
  readonly began = new Promise<void>((r) => (this.begin = r));
  override async freeze(id: string) {
    this.begin?.();
    await new Promise<void>((r) => (this.release = r));
    return super.freeze(id);
  }
  finishFreeze(): void {
    this.release?.();
  }
}
const MINUTE = 60_000;
const FREEZE_AFTER = MINUTE;

describe("freeze when idle, thaw on connect (fake clock, fake driver, fake gateway)", () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-freeze-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(
    options: {
      driver?: FakeDriver;
      store?: Store;
      clock?: FakeClock;
      freezeAfterMs?: number;
      hostCapacity?: number;
    } = {},
  ) {
    const store = options.store ?? (await Store.openSqlite(join(dir, `freeze-${n++}.db`)));
    const clock = options.clock ?? new FakeClock();
    const driver = options.driver ?? new FakeDriver();
    const link = new FakeGatewayLink(driver.calls, clock.now());
    const controller = new LifetimeController(
      store,
      driver,
      clock,
      { options: {} },
      options.hostCapacity === undefined ? undefined : { profiles: [], hostCapacity: options.hostCapacity },
      link,
      options.freezeAfterMs ?? FREEZE_AFTER,
    );
    const events: string[] = [];
    controller.on("froze", (r: ClusterRecord) => events.push(`froze ${r.id}`));
    controller.on("thawed", (r: ClusterRecord) => events.push(`thawed ${r.id}`));
    controller.start();
    const service = new ClusterService(store, controller, driver, clock, {
      hostCapacity: options.hostCapacity ?? Number.POSITIVE_INFINITY,
      notifications: {},
    });
    const settle = async (id: string) => {
      await controller.idle();
      return (await store.clusters.get(id))!;
    };
    const pass = async (ms: number) => {
      for (let t = 0; t < ms; t += IDLE_CHECK_MS) {
        clock.advance(Math.min(IDLE_CHECK_MS, ms - t));
        await controller.idle();
      }
    };
    return { store, clock, driver, link, controller, service, settle, pass, events };
  }

  it("freezes a running cluster after the freeze time without a connection: recorded, marked, then frozen; still running", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(r.id);
    await s.pass(FREEZE_AFTER - IDLE_CHECK_MS);
    assert.equal((await s.settle(r.id)).frozenAt, null, "not idle long enough");
    await s.pass(IDLE_CHECK_MS);
    const frozen = await s.settle(r.id);
    assert.equal(frozen.phase, "running", "a frozen cluster is still running");
    assert.equal(typeof frozen.frozenAt, "number");
    assert.deepEqual(s.driver.calls, [`provision ${r.id}`, `mark ${r.id}`, `freeze ${r.id}`], "the marker first");
    assert.ok(s.driver.frozen.has(r.id));
    assert.deepEqual(s.events, [`froze ${r.id}`]);
    await s.pass(10 * MINUTE);
    assert.equal(s.driver.calls.filter((c) => c.startsWith("freeze")).length, 1, "frozen once");
    await s.controller.stop();
  });

  it("thaws on a wake request: thawed, recorded so, then the marker cleared and the request handled", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(r.id);
    await s.pass(FREEZE_AFTER);
    s.driver.calls.length = 0;
    s.link.requestWake(r.id);
    const thawed = await s.settle(r.id);
    assert.equal(thawed.frozenAt, null);
    assert.equal(thawed.phase, "running");
    assert.deepEqual(s.driver.calls, [`thaw ${r.id}`, `clear ${r.id}`, `handled ${r.id}`]);
    assert.ok(!s.driver.frozen.has(r.id));
    assert.deepEqual(s.events, [`froze ${r.id}`, `thawed ${r.id}`]);
    // Used now: frozen again only after another quiet freeze time.
    s.link.connection(r.id, s.clock.now());
    s.driver.calls.length = 0;
    await s.pass(FREEZE_AFTER - IDLE_CHECK_MS);
    assert.deepEqual(s.driver.calls, []);
    await s.pass(IDLE_CHECK_MS);
    assert.deepEqual(s.driver.calls, [`mark ${r.id}`, `freeze ${r.id}`]);
    await s.controller.stop();
  });

  it("leaves a cluster running the tenant's work alone, recorded thawed, and looks again a freeze time later", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(r.id);
    s.driver.busy.set(r.id, "1 pod(s) of the tenant run (default/web)");
    await s.pass(FREEZE_AFTER);
    const busy = await s.settle(r.id);
    assert.equal(busy.frozenAt, null);
    assert.deepEqual(s.driver.calls.slice(1), [`mark ${r.id}`, `freeze ${r.id}`, `clear ${r.id}`]);
    assert.ok(!s.link.markers.has(r.id), "the gateway routes to it again");
    s.driver.calls.length = 0;
    await s.pass(FREEZE_AFTER - IDLE_CHECK_MS);
    assert.deepEqual(s.driver.calls, [], "not asked again at every check");
    s.driver.busy.delete(r.id);
    await s.pass(2 * IDLE_CHECK_MS);
    assert.deepEqual(s.driver.calls, [`mark ${r.id}`, `freeze ${r.id}`]);
    assert.ok(s.driver.frozen.has(r.id));
    await s.controller.stop();
  });

  it("calls a freeze off when a connection came just before the marker", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(r.id);
    s.link.onMark = (id) => s.link.connection(id, s.clock.now(), 1);
    await s.pass(FREEZE_AFTER);
    assert.equal((await s.settle(r.id)).frozenAt, null);
    assert.deepEqual(s.driver.calls.slice(1), [`mark ${r.id}`, `clear ${r.id}`], "never frozen");
    await s.controller.stop();
  });

  it("stops, deletes or sleeps a frozen cluster like any other (the runtime thaws first), the marker cleared", async () => {
    const s = await setup();
    const stopped = await s.service.create(owner, { ttlMinutes: 60 });
    const deleted = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(stopped.id);
    await s.settle(deleted.id);
    await s.pass(FREEZE_AFTER);
    assert.ok(s.driver.frozen.has(stopped.id) && s.driver.frozen.has(deleted.id));
    await s.service.stop(owner, stopped.id);
    const after = await s.settle(stopped.id);
    assert.equal(after.phase, "stopped");
    assert.equal(after.frozenAt, null);
    await s.service.delete(owner, deleted.id);
    assert.equal((await s.settle(deleted.id)).phase, "terminated");
    await s.pass(IDLE_CHECK_MS);
    assert.deepEqual([...s.link.markers], [], "no marker left for either");
    await s.controller.stop();
  });

  it("never freezes with freeze time 0, and a cluster that sleeps sooner sleeps rather than freezes", async () => {
    const off = await setup({ freezeAfterMs: 0 });
    const r = await off.service.create(owner, { ttlMinutes: 60 });
    await off.settle(r.id);
    await off.pass(10 * MINUTE);
    assert.deepEqual(off.driver.calls, [`provision ${r.id}`]);
    await off.controller.stop();

    const s = await setup({ freezeAfterMs: 5 * MINUTE });
    const sleeper = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await s.settle(sleeper.id);
    await s.pass(5 * MINUTE);
    assert.equal((await s.settle(sleeper.id)).phase, "sleeping");
    assert.ok(!s.driver.calls.includes(`freeze ${sleeper.id}`));
    await s.controller.stop();
  });

  it("after a restart, a cluster recorded frozen keeps its marker and thaws on the next wake request", async () => {
    const store = await Store.openSqlite(join(dir, `freeze-restart.db`));
    const clock = new FakeClock();
    const driver = new FakeDriver();
    const first = await setup({ store, clock, driver });
    const r = await first.service.create(owner, { ttlMinutes: 60 });
    await first.settle(r.id);
    await first.pass(FREEZE_AFTER);
    await first.controller.stop();
    const second = await setup({ store, clock, driver });
    second.link.markers.add(r.id);
    await second.pass(IDLE_CHECK_MS);
    assert.ok(second.link.markers.has(r.id), "not cleared: the record says frozen");
    second.link.requestWake(r.id);
    assert.equal((await second.settle(r.id)).frozenAt, null);
    assert.ok(!driver.frozen.has(r.id));
    assert.ok(!second.link.markers.has(r.id));
    await second.controller.stop();
  });

  it("on a full host, frozen clusters go to sleep for a create, the longest frozen first; none frozen: 429", async () => {
    const s = await setup({ hostCapacity: 2 });
    const first = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(first.id);
    await s.pass(FREEZE_AFTER);
    const second = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(second.id);
    await s.pass(FREEZE_AFTER);
    assert.ok(s.driver.frozen.has(first.id) && s.driver.frozen.has(second.id));
    s.driver.calls.length = 0;
    const third = await s.service.create(owner, { ttlMinutes: 60 });
    const made = await s.settle(third.id);
    assert.equal(made.phase, "running");
    const slept = await s.store.clusters.get(first.id);
    assert.equal(slept?.phase, "sleeping", "the longest frozen gave way");
    assert.equal(slept?.frozenAt, null);
    assert.equal(slept?.desired, "running", "still its owner's: the next connection wakes it");
    assert.equal((await s.store.clusters.get(second.id))?.frozenAt !== null, true, "only as many as needed");
    assert.deepEqual(
      s.driver.calls.slice(0, 2),
      [`stop ${first.id}`, `provision ${third.id}`],
      "stopped before the create",
    );
    assert.ok(s.link.markers.has(first.id), "the gateway holds its next connection and asks for a wake");
    // The next create: the second (frozen) gives way; then none frozen is left: refused (429).
    const fourth = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(fourth.id);
    assert.equal((await s.store.clusters.get(second.id))?.phase, "sleeping");
    await assert.rejects(
      s.service.create(owner, { ttlMinutes: 60 }),
      (err: Error) => /host capacity reached/.test(err.message),
      "the running ones are not frozen: nothing gives way",
    );
    // A wake on a full host: the longest frozen (the third, once idle) goes to sleep in its turn.
    await s.pass(FREEZE_AFTER);
    s.driver.calls.length = 0;
    s.link.requestWake(first.id);
    assert.equal((await s.settle(first.id)).phase, "running");
    assert.equal((await s.store.clusters.get(third.id))?.phase, "sleeping");
    assert.equal((await s.store.clusters.get(fourth.id))?.phase, "running");
    assert.deepEqual(s.driver.calls.slice(0, 2), [`stop ${third.id}`, `start ${first.id}`]);
    await s.controller.stop();
  });

  it("a create on a full host while a freeze is under way waits for it to land, then that cluster gives way", async () => {
    const driver = new SlowFreezeDriver();
    const s = await setup({ hostCapacity: 1, driver });
    const first = await s.service.create(owner, { ttlMinutes: 60 });
    await s.settle(first.id);
    for (let t = 0; t < FREEZE_AFTER + IDLE_CHECK_MS; t += IDLE_CHECK_MS) {
      s.clock.advance(IDLE_CHECK_MS);
      await new Promise((r) => setTimeout(r, 20));
    }
    await driver.began;
    assert.equal(typeof (await s.store.clusters.get(first.id))?.frozenAt, "number", "recorded frozen, not yet frozen");
    const creating = s.service.create(owner, { ttlMinutes: 60 });
    await new Promise((r) => setTimeout(r, 50));
    driver.finishFreeze();
    const second = await creating;
    assert.equal((await s.settle(second.id)).phase, "running");
    assert.equal((await s.store.clusters.get(first.id))?.phase, "sleeping");
    await s.controller.stop();
  });
});
