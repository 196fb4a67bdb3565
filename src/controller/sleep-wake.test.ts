import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ClusterRecord } from "../core/cluster-record.js";
import { ClusterService } from "../service/cluster-service.js";
import { Store } from "../store/store.js";
import { FakeGatewayLink } from "../testing/fake-gateway-link.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { LifetimeController } from "./lifetime-controller.js";
import { IDLE_CHECK_MS } from "../core/idle.js";

const owner = unlimitedTenant;
const MINUTE = 60_000;
const HOOK = "http://127.0.0.1:9/hook";

/** A driver whose stops wait until released: a wake requested while a sleep's stop is under way. */
class SlowStopDriver extends FakeDriver {
  private release: (() => void) | undefined;
  stopping: Promise<void> | undefined;
  private stopStarted: (() => void) | undefined;
  readonly stopBegan = new Promise<void>((r) => (this.stopStarted = r));
  override async stop(id: string): Promise<void> {
    this.stopping = new Promise((r) => (this.release = r));
    this.stopStarted?.();
    await this.stopping;
    return super.stop(id);
  }
  finishStop(): void {
    this.release?.();
  }
}

describe("sleep when idle, wake on connect (fake clock, fake driver, fake gateway)", () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-sleep-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(
    options: { link?: boolean; driver?: FakeDriver; store?: Store; clock?: FakeClock; markers?: string[] } = {},
  ) {
    const store = options.store ?? (await Store.openSqlite(join(dir, `sleep-${n++}.db`)));
    const clock = options.clock ?? new FakeClock();
    const driver = options.driver ?? new FakeDriver();
    const link = options.link === false ? undefined : new FakeGatewayLink(driver.calls, clock.now());
    for (const id of options.markers ?? []) link?.markers.add(id);
    const controller = new LifetimeController(store, driver, clock, { options: { webhookUrl: HOOK } }, undefined, link);
    const events: string[] = [];
    controller.on("slept", (r: ClusterRecord) => events.push(`slept ${r.id}`));
    controller.on("woke", (r: ClusterRecord) => events.push(`woke ${r.id} ${r.phase}`));
    controller.on("phase", (r: ClusterRecord) => events.push(r.phase));
    controller.start();
    const service = new ClusterService(store, controller, driver, clock);
    const settle = async (id: string) => {
      await controller.idle();
      return (await store.clusters.get(id))!;
    };
    /** Time passing as it does: the controller looks every IDLE_CHECK_MS. */
    const pass = async (ms: number) => {
      for (let t = 0; t < ms; t += IDLE_CHECK_MS) {
        clock.advance(Math.min(IDLE_CHECK_MS, ms - t));
        await controller.idle();
      }
    };
    /** The events the owner was told of (webhook channel: one per event). */
    const told = async (id: string) =>
      (await store.outbox.list(id)).filter((m) => m.channel === "webhook").map((m) => m.event);
    return { store, clock, driver, link, controller, service, settle, pass, told, events };
  }

  /** A running cluster of `idleMinutes`, then put to sleep by `idleMinutes` of quiet. */
  async function asleep(s: Awaited<ReturnType<typeof setup>>, changes: { keep?: boolean; ttlMinutes?: number } = {}) {
    const r = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5, ...changes });
    assert.equal((await s.settle(r.id)).phase, "running");
    await s.pass(5 * MINUTE);
    assert.equal((await s.settle(r.id)).phase, "sleeping");
    return r;
  }

  it("puts a cluster to sleep after idleMinutes without a connection: recorded, marked, then stopped; nobody told", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await s.settle(r.id);
    await s.pass(4 * MINUTE);
    assert.equal((await s.settle(r.id)).phase, "running", "not idle long enough");
    await s.pass(MINUTE);
    const slept = await s.settle(r.id);
    assert.equal(slept.phase, "sleeping");
    assert.equal(slept.desired, "running", "still wanted running: the next connection wakes it");
    assert.equal(slept.sleptAt, s.clock.now());
    assert.deepEqual(
      s.driver.calls,
      [`provision ${r.id}`, `mark ${r.id}`, `stop ${r.id}`],
      "the marker before the stop",
    );
    assert.equal(s.driver.clusters.get(r.id), "stopped", "no processes left");
    assert.ok(s.link!.markers.has(r.id));
    assert.deepEqual(s.events.slice(-2), ["sleeping", `slept ${r.id}`]);
    assert.deepEqual(await s.told(r.id), ["ready"], "no mail or webhook for the sleep");
    await s.controller.stop();
  });

  it("calls a sleep off when a connection came just before the marker: not cut, running again, nobody told", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await s.settle(r.id);
    s.link!.onMark = (id) => s.link!.connection(id, s.clock.now(), 1);
    await s.pass(5 * MINUTE);
    const kept = await s.settle(r.id);
    assert.equal(kept.phase, "running");
    assert.equal(kept.sleptAt, null);
    assert.deepEqual(s.driver.calls, [`provision ${r.id}`, `mark ${r.id}`, `clear ${r.id}`], "never stopped");
    assert.ok(!s.events.some((e) => e.startsWith("slept")));
    assert.deepEqual(await s.told(r.id), ["ready"]);
    s.link!.onMark = undefined;
    s.link!.connection(r.id, s.clock.now(), 0);
    await s.pass(5 * MINUTE);
    assert.equal((await s.settle(r.id)).phase, "sleeping", "and sleeps once idle again");
    await s.controller.stop();
  });

  it("keeps a cluster with an open connection awake; idle time counts from the last one", async () => {
    const s = await setup();
    const r = await s.service.create(owner, { ttlMinutes: 120, idleMinutes: 5 });
    await s.settle(r.id);
    s.link!.connection(r.id, s.clock.now(), 1);
    await s.pass(30 * MINUTE);
    assert.equal((await s.settle(r.id)).phase, "running", "an open watch keeps it awake");
    s.link!.connection(r.id, s.clock.now(), 0);
    await s.pass(4 * MINUTE);
    assert.equal((await s.settle(r.id)).phase, "running", "closed 4 minutes ago");
    await s.pass(MINUTE);
    assert.equal((await s.settle(r.id)).phase, "sleeping");
    await s.controller.stop();
  });

  it("never puts a cluster to sleep without a gateway's activity, without a gateway, or with idleMinutes 0", async () => {
    const s = await setup();
    s.link!.current = undefined;
    const quiet = await s.service.create(owner, { ttlMinutes: 120, idleMinutes: 5 });
    const never = await s.service.create(owner, { ttlMinutes: 120, idleMinutes: 0 });
    await s.settle(quiet.id);
    await s.pass(60 * MINUTE);
    assert.equal((await s.settle(quiet.id)).phase, "running", "no activity known: no sleep");
    s.link!.activity = async () => {
      throw new Error("connect ENOENT control.sock");
    };
    await s.pass(MINUTE);
    assert.equal((await s.settle(quiet.id)).phase, "running", "no gateway answering: no sleep");
    s.link!.activity = FakeGatewayLink.prototype.activity;
    s.link!.current = { since: 0, clusters: {} };
    await s.pass(10_000);
    assert.equal((await s.settle(quiet.id)).phase, "sleeping");
    assert.equal((await s.settle(never.id)).phase, "running");
    await s.controller.stop();

    const without = await setup({ link: false });
    const r = await without.service.create(owner, { ttlMinutes: 120, idleMinutes: 5 });
    await without.settle(r.id);
    await without.pass(60 * MINUTE);
    assert.equal((await without.settle(r.id)).phase, "running");
    assert.deepEqual(without.driver.calls, [`provision ${r.id}`]);
    await without.controller.stop();
  });

  it("wakes on a request: starting, running, then the marker cleared, then the request removed; nobody told", async () => {
    const s = await setup();
    const r = await asleep(s);
    s.driver.calls.length = 0;
    s.events.length = 0;
    s.link!.requestWake(r.id);
    const woken = await s.settle(r.id);
    assert.equal(woken.phase, "running");
    assert.equal(woken.sleptAt, null);
    assert.equal(woken.runningSince, s.clock.now());
    assert.deepEqual(s.driver.calls, [`start ${r.id}`, `clear ${r.id}`, `handled ${r.id}`]);
    assert.deepEqual(s.events, ["starting", "running", `woke ${r.id} running`]);
    assert.equal(s.link!.requests.size, 0);
    assert.deepEqual(await s.told(r.id), ["ready"], "no mail or webhook for the wake");

    await s.pass(4 * MINUTE);
    assert.equal((await s.settle(r.id)).phase, "running", "a woken cluster gets its whole idle time again");
    await s.pass(MINUTE);
    assert.equal((await s.settle(r.id)).phase, "sleeping", "and sleeps again after it");
    await s.controller.stop();
  });

  it("removes a wake request for a cluster that is not asleep, and a marker of one that is gone", async () => {
    const s = await setup({ markers: ["gone123"] });
    const r = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await s.settle(r.id);
    s.link!.requestWake(r.id);
    s.link!.requestWake("gone123");
    await s.settle(r.id);
    assert.equal(s.link!.requests.size, 0);
    assert.equal(s.link!.markers.size, 0);
    assert.equal((await s.store.clusters.get(r.id))?.phase, "running");
    assert.ok(!s.driver.calls.includes(`start ${r.id}`));
    await s.controller.stop();
  });

  it("does not lose a wake requested while the sleep's stop is still under way", async () => {
    const driver = new SlowStopDriver();
    const s = await setup({ driver });
    const r = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await s.settle(r.id);
    await s.pass(5 * MINUTE - IDLE_CHECK_MS);
    s.clock.advance(IDLE_CHECK_MS);
    await driver.stopBegan;
    assert.ok(s.link!.markers.has(r.id), "marked before the stop began");
    s.link!.requestWake(r.id);
    await new Promise((resolve) => setTimeout(resolve, 20));
    driver.finishStop();
    const woken = await s.settle(r.id);
    assert.equal(woken.phase, "running");
    assert.deepEqual(driver.calls.slice(1), [
      `mark ${r.id}`,
      `stop ${r.id}`,
      `start ${r.id}`,
      `clear ${r.id}`,
      `handled ${r.id}`,
    ]);
    await s.controller.stop();
  });

  it("lets the owner start (a wake), stop and delete a sleeping cluster, clearing its marker", async () => {
    const s = await setup();
    const started = await asleep(s);
    const waking = await s.service.start(owner, started.id);
    assert.equal(waking.phase, "starting");
    const woken = (await s.service.waitSettled(started.id))!;
    assert.equal(woken.phase, "running");
    assert.ok(!s.link!.markers.has(started.id));
    assert.deepEqual(await s.told(started.id), ["ready"], "a start out of sleep is a wake too");
    assert.ok(s.events.includes(`woke ${started.id} running`));

    const stopped = await asleep(s);
    await s.service.stop(owner, stopped.id);
    assert.equal((await s.settle(stopped.id)).phase, "stopped");
    assert.ok(!s.link!.markers.has(stopped.id));
    assert.deepEqual(await s.told(stopped.id), ["ready", "stopped"], "a stop is the owner's and told as usual");
    assert.equal(
      s.driver.calls.filter((c) => c === `stop ${stopped.id}`).length,
      1,
      "nothing left to stop after a finished sleep",
    );

    const deleted = await asleep(s);
    await s.service.extend(owner, deleted.id, 90);
    assert.equal((await s.store.clusters.get(deleted.id))?.phase, "sleeping", "extend leaves it asleep");
    await s.service.delete(owner, deleted.id);
    assert.equal((await s.settle(deleted.id)).phase, "terminated");
    assert.ok(!s.link!.markers.has(deleted.id));
    await s.controller.stop();
  });

  it("lets the TTL run while asleep: at expiry a kept cluster is stopped, any other terminated, and told", async () => {
    const s = await setup();
    const kept = await asleep(s, { keep: true, ttlMinutes: 30 });
    const dropped = await asleep(s, { ttlMinutes: 30 });
    await s.pass(30 * MINUTE);
    assert.equal((await s.settle(kept.id)).phase, "stopped");
    assert.equal((await s.settle(dropped.id)).phase, "terminated");
    assert.equal(s.link!.markers.size, 0, "the gateway refuses connections for them now");
    assert.deepEqual(await s.told(kept.id), ["ready", "expiry-warning", "stopped"]);
    assert.deepEqual(await s.told(dropped.id), ["ready", "expiry-warning", "terminated"]);
    await s.controller.stop();
  });

  it("after a restart mid-sleep: marks and stops again; a request made while down wakes it", async () => {
    const first = await setup({ link: false });
    const r = await first.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await first.settle(r.id);
    await first.controller.stop();
    // Killed just after recording the sleep: no marker, the processes still up.
    await first.store.clusters.update(
      r.id,
      { phase: "sleeping", sleptAt: first.clock.now() },
      { now: first.clock.now() },
    );

    const second = await setup({ store: first.store, clock: first.clock, driver: first.driver });
    assert.equal((await second.settle(r.id)).phase, "sleeping");
    assert.deepEqual(first.driver.calls.slice(-2), [`mark ${r.id}`, `stop ${r.id}`]);
    assert.equal(first.driver.clusters.get(r.id), "stopped");
    await second.controller.stop();

    const third = await setup({ store: first.store, clock: first.clock, driver: first.driver });
    await third.controller.stop();
    // A wake asked for while no server ran, and a restart mid-wake are the same from here on.
    const link = new FakeGatewayLink(first.driver.calls, first.clock.now());
    link.markers.add(r.id);
    link.requests.add(r.id);
    const controller = new LifetimeController(
      first.store,
      first.driver,
      first.clock,
      { options: { webhookUrl: HOOK } },
      undefined,
      link,
    );
    controller.start();
    await controller.idle();
    assert.equal((await first.store.clusters.get(r.id))?.phase, "running");
    assert.deepEqual(first.driver.calls.slice(-3), [`start ${r.id}`, `clear ${r.id}`, `handled ${r.id}`]);
    assert.deepEqual(await first.told(r.id), ["ready"]);
    await controller.stop();
  });

  it("after a restart mid-wake: finishes the start, then clears the marker and the request; nobody told", async () => {
    const s = await setup({ link: false });
    const r = await s.service.create(owner, { ttlMinutes: 60, idleMinutes: 5 });
    await s.settle(r.id);
    await s.controller.stop();
    await s.store.clusters.update(r.id, { phase: "starting", sleptAt: s.clock.now() }, { now: s.clock.now() });
    s.driver.clusters.set(r.id, "stopped");
    const link = new FakeGatewayLink(s.driver.calls, s.clock.now());
    link.markers.add(r.id);
    link.requests.add(r.id);
    const controller = new LifetimeController(
      s.store,
      s.driver,
      s.clock,
      { options: { webhookUrl: HOOK } },
      undefined,
      link,
    );
    controller.start();
    await controller.idle();
    assert.equal((await s.store.clusters.get(r.id))?.phase, "running");
    assert.deepEqual(s.driver.calls.slice(-3), [`start ${r.id}`, `clear ${r.id}`, `handled ${r.id}`]);
    assert.deepEqual(await s.told(r.id), ["ready"]);
    await controller.stop();
  });

  it("fails a wake that cannot start, and clears the marker so the gateway refuses instead of holding", async () => {
    const s = await setup();
    const r = await asleep(s);
    s.driver.start = async () => {
      throw new Error("host has no room");
    };
    s.link!.requestWake(r.id);
    const failed = await s.settle(r.id);
    assert.equal(failed.phase, "failed");
    assert.equal(failed.lastError, "host has no room");
    assert.equal(s.link!.markers.size, 0);
    assert.equal(s.link!.requests.size, 0);
    assert.ok(s.events.includes(`woke ${r.id} failed`));
    s.driver.start = FakeDriver.prototype.start;
    await s.service.start(owner, r.id);
    assert.equal((await s.settle(r.id)).phase, "running", "a start tries it again");
    await s.controller.stop();
  });
});
