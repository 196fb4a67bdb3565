import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ClusterService } from "../service/cluster-service.js";
import { Store } from "../store/store.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { LifetimeController } from "./lifetime-controller.js";

const owner = unlimitedTenant;

async function settle(controller: LifetimeController, store: Store, id: string) {
  await controller.idle();
  return store.clusters.get(id);
}

describe("lifetime controller (fake clock, fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-ctl-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(name: string) {
    const store = await Store.openSqlite(join(dir, `${name}.db`));
    const clock = new FakeClock();
    const driver = new FakeDriver();
    const controller = new LifetimeController(store, driver, clock);
    controller.start();
    return { store, clock, driver, controller, service: new ClusterService(store, controller, driver, clock) };
  }

  it("provisions, then terminates at the exact expiry", async () => {
    const { store, clock, driver, controller, service } = await setup("terminate");
    const r = await service.create(owner, { ttlMinutes: 10 });
    assert.equal((await settle(controller, store, r.id))?.phase, "running");
    clock.advance(10 * 60_000 - 1);
    await controller.idle();
    assert.deepEqual(driver.calls, [`provision ${r.id}`], "nothing happens a millisecond early");
    clock.advance(1);
    assert.equal((await settle(controller, store, r.id))?.phase, "terminated");
    assert.deepEqual(driver.calls, [`provision ${r.id}`, `destroy ${r.id}`]);
    await controller.stop();
  });

  it("stops a kept cluster at expiry; start gives it a new lifetime; extend moves expiry", async () => {
    const { store, clock, driver, controller, service } = await setup("keep");
    const r = await service.create(owner, { ttlMinutes: 5, keep: true });
    await settle(controller, store, r.id);
    clock.advance(5 * 60_000);
    assert.equal((await settle(controller, store, r.id))?.phase, "stopped");
    const started = await service.start(owner, r.id);
    assert.equal(started.expiresAt, clock.now() + 5 * 60_000);
    assert.equal((await settle(controller, store, r.id))?.phase, "running");
    await service.extend(owner, r.id, 30);
    clock.advance(10 * 60_000);
    await controller.idle();
    assert.equal(
      (await store.clusters.get(r.id))?.phase,
      "running",
      "extended cluster still runs after its old expiry",
    );
    assert.deepEqual(driver.calls, [`provision ${r.id}`, `stop ${r.id}`, `start ${r.id}`]);
    await controller.stop();
  });

  it("after a restart, acts on what expired while it was down and redoes a cut-short provision", async () => {
    const { store, clock, controller, service } = await setup("restart");
    const expired = await service.create(owner, { ttlMinutes: 1 });
    await settle(controller, store, expired.id);
    await controller.stop();
    const cut = await service.create(owner, { ttlMinutes: 60 });
    await store.clusters.update(cut.id, { phase: "provisioning" }, { now: clock.now() });
    clock.advance(2 * 60_000);

    const driver2 = new FakeDriver();
    const controller2 = new LifetimeController(store, driver2, clock);
    controller2.start();
    assert.equal((await settle(controller2, store, expired.id))?.phase, "terminated");
    assert.equal((await settle(controller2, store, cut.id))?.phase, "running");
    assert.ok(driver2.calls.includes(`destroy ${cut.id}`) && driver2.calls.includes(`provision ${cut.id}`));
    await controller2.stop();
  });

  it("refuses illegal transitions and hides other tenants' clusters", async () => {
    const { store, controller, service } = await setup("rules");
    const r = await service.create(owner, {});
    await settle(controller, store, r.id);
    await assert.rejects(service.start(owner, r.id), (e: Error & { type?: string }) => e.type === "conflict");
    await assert.rejects(
      service.get({ ...owner, id: 2, name: "other" }, r.id),
      (e: Error & { type?: string }) => e.type === "not-found",
    );
    await assert.rejects(service.create(owner, { size: "huge" }), /size "huge" is not one of/);
    await controller.stop();
  });
});
