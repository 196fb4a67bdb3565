import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { LifetimeController } from "../controller/lifetime-controller.js";
import { Store } from "../store/store.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { ClusterService, type ClusterServiceOptions } from "./cluster-service.js";

describe("cluster service behind the gateway (fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-svc-gw-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A running cluster's kubeconfig and endpoint, as a service with these options hands them out. */
  async function handedOut(name: string, options: ClusterServiceOptions) {
    const store = await Store.openSqlite(join(dir, `${name}.db`));
    const clock = new FakeClock();
    const driver = new FakeDriver();
    const controller = new LifetimeController(store, driver, clock, { options: {} }, { profiles: [] });
    controller.start();
    try {
      const service = new ClusterService(
        store,
        controller,
        driver,
        clock,
        { hostCapacity: 10, notifications: {} },
        options,
      );
      const made = await service.create(unlimitedTenant, {});
      await controller.idle();
      const record = await service.get(unlimitedTenant, made.id);
      assert.equal(record.phase, "running");
      return {
        id: made.id,
        kubeconfig: YAML.parse(await service.kubeconfig(unlimitedTenant, made.id)),
        endpoint: await service.endpoint(record),
      };
    } finally {
      await controller.stop();
      await store.close();
    }
  }

  it("hands out kubeconfigs and servers through the gateway, named by the cluster", async () => {
    const gateway = { publicAddress: "2001:db8::7", port: 16443, clusterDomain: "clusters.example" };
    const { id, kubeconfig, endpoint } = await handedOut("gateway", { gateway });
    assert.equal(endpoint, "https://[2001:db8::7]:16443");
    assert.deepEqual(kubeconfig.clusters[0].cluster, {
      server: "https://[2001:db8::7]:16443",
      "tls-server-name": `${id}.clusters.example`,
    });
  });

  it("without a gateway, hands out the runtime's own", async () => {
    const { kubeconfig, endpoint } = await handedOut("direct", {});
    assert.equal(endpoint, "https://fake");
    assert.deepEqual(kubeconfig.clusters[0].cluster, { server: "https://fake" });
  });
});
