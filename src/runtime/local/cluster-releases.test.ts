import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { kubernetesInstalled } from "../../setup/artifact-paths.js";
import { KUBERNETES_RELEASES, type KubernetesRelease } from "../../setup/catalogue.js";
import { fakeInstall } from "../../testing/fake-install.js";
import { TempkubeError } from "../../util/errors.js";
import { clusterReleases } from "./cluster-releases.js";
import { LocalRuntime } from "./local-runtime.js";

/** The catalogue as it would be the day 1.37's kubelet drops cgroup v1. */
const DROPPED_IN_37: KubernetesRelease[] = KUBERNETES_RELEASES.map((r) =>
  r.minor === "1.37" ? { ...r, kubeletRunsOnCgroupV1: false } : r,
);
const v = (minor: string) => KUBERNETES_RELEASES.find((r) => r.minor === minor)!;
const all = () => true;

const refusal = (type: string, pattern: RegExp) => (e: unknown) =>
  e instanceof TempkubeError && e.type === type && pattern.test(e.message);

describe("a cluster's releases on this host (policy + what is installed)", () => {
  it("runs every node on the control plane's release on both host kinds, for every offered release today", () => {
    for (const release of KUBERNETES_RELEASES) {
      assert.equal(release.kubeletRunsOnCgroupV1, true, `${release.version}: measured 2026-12-01`);
      for (const cgroup of ["v1", "v2"] as const) {
        const plan = clusterReleases(release.minor, cgroup, all);
        assert.equal(plan.controlPlane, release);
        assert.equal(plan.kubelet, release, `${release.minor} on cgroup ${cgroup}`);
        assert.equal(plan.kubeProxy, release);
      }
    }
  });

  it("gives 1.37's nodes 1.36's kubelet on cgroup v1 once 1.37's cannot run there; kube-proxy stays 1.37", () => {
    const plan = clusterReleases("1.37", "v1", all, DROPPED_IN_37);
    assert.equal(plan.controlPlane.minor, "1.37");
    assert.equal(plan.kubelet.minor, "1.36");
    assert.equal(plan.kubeProxy.minor, "1.37");
    assert.match(plan.reason, /nodes run kubelet v1\.36\.\d+/);
    const v2 = clusterReleases("1.37", "v2", all, DROPPED_IN_37);
    assert.equal(v2.kubelet.minor, "1.37", "a cgroup v2 host runs 1.37's own kubelet");
  });

  it("refuses when the kubelet's release is not installed, naming both the reason and the command", () => {
    const only137 = (r: KubernetesRelease) => r.minor === "1.37";
    assert.throws(
      () => clusterReleases("1.37", "v1", only137, DROPPED_IN_37),
      refusal(
        "not-installed",
        /^Kubernetes v1\.36\.\d+ is offered but not installed on this host \(nodes run kubelet v1\.36.*\); run on the host: tempkube versions install 1\.36$/,
      ),
    );
    // The same host kind with cgroup v2 needs only 1.37.
    assert.equal(clusterReleases("1.37", "v2", only137, DROPPED_IN_37).kubelet.minor, "1.37");
    assert.throws(
      () => clusterReleases("1.37", "v1", () => false, DROPPED_IN_37),
      refusal("not-installed", /Kubernetes v1\.37\.\d+ and v1\.36\.\d+ are offered.*versions install 1\.37 1\.36$/),
    );
  });

  it("refuses a version that is not offered, and one no kubelet can run on this host", () => {
    assert.throws(() => clusterReleases("1.29", "v1", all), refusal("invalid-input", /"1\.29" is not offered/));
    const noneOnV1 = KUBERNETES_RELEASES.map((r) => ({ ...r, kubeletRunsOnCgroupV1: false }));
    assert.throws(
      () => clusterReleases("1.37", "v1", all, noneOnV1),
      refusal("conflict", /^Kubernetes 1\.37 cannot run on this host: .*cgroup v2 host/),
    );
  });
});

describe("versions not installed, with an isolated cache (TEMPKUBE_CACHE)", () => {
  let dir: string;
  let saved: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-releases-"));
    saved = process.env.TEMPKUBE_CACHE;
    process.env.TEMPKUBE_CACHE = join(dir, "cache");
  });
  after(async () => {
    if (saved === undefined) delete process.env.TEMPKUBE_CACHE;
    else process.env.TEMPKUBE_CACHE = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it("counts a release installed once its manifest and every component are in the cache", async () => {
    assert.equal(kubernetesInstalled(v("1.36")), false);
    await fakeInstall(join(dir, "cache"), v("1.36"));
    assert.equal(kubernetesInstalled(v("1.36")), true);
    await rm(join(dir, "cache", "kubernetes", v("1.36").version, "kubelet"));
    assert.equal(kubernetesInstalled(v("1.36")), false, "a component missing");
  });

  it("`runtime create` of a version not installed is refused at once, before anything is made", async () => {
    const dataDir = join(dir, "data");
    const runtime = new LocalRuntime({ dataDir });
    await assert.rejects(
      runtime.provision({ id: "notinst", kubernetesVersion: "1.35", privileged: false, size: "1-small", workers: 0 }),
      refusal("not-installed", /Kubernetes v1\.35\.\d+ is offered but not installed.*tempkube versions install 1\.35/),
    );
    assert.throws(() => runtime.checkVersion("1.35"), refusal("not-installed", /versions install 1\.35/));
    assert.deepEqual(await readdir(join(dataDir, "clusters")).catch(() => []), [], "no cluster directory");
    assert.equal(existsSync(join(dataDir, "clusters", "notinst")), false);
  });
});
