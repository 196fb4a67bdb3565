import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../../testing/root.js";
import { newClusterId, type ClusterSpec } from "../../core/cluster-spec.js";
import { TempkubeError } from "../../util/errors.js";
import { dataDir } from "../../util/paths.js";
import type { LocalClusterState } from "./cluster-state.js";
import { HostInspection } from "./host-inspection.js";
import { LocalRuntime } from "./local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";

/**
 * A create that cannot succeed fails with the reason at once (issue 15: the 8th cluster on
 * a fresh host waited 182 s, then failed without saying why). Root's inotify instances are
 * really used up here, for a few seconds, by lowering fs.inotify.max_user_instances to what
 * is in use; it is put back in a `finally`.
 */
const runtime = new LocalRuntime();
const host = new HostInspection();
const MAX_INSTANCES = "/proc/sys/fs/inotify/max_user_instances";

/** Root's inotify instances in use, counted synchronously (see src/host/inotify.ts for why from fds). */
function rootInotifyInstancesNow(): number {
  let n = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (statSync(`/proc/${pid}`).uid !== 0) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:inotify") n++;
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* exited meanwhile */
    }
  }
  return n;
}

function spec(id: string): ClusterSpec {
  return { id, kubernetesVersion: DEFAULT_KUBERNETES_MINOR, privileged: false, size: "1-small", workers: 0 };
}

describe("a create that cannot succeed fails fast", { skip: unlessRoot("real clusters"), timeout: 10 * 60_000 }, () => {
  const original = readFileSync(MAX_INSTANCES, "utf8").trim();
  const ids = [`e2eff${newClusterId().slice(0, 5)}`, `e2eff${newClusterId().slice(0, 5)}`];

  before(async () => {
    // A killed earlier run cannot clean up after itself.
    for (const id of await runtime.list()) if (id.startsWith("e2eff")) await runtime.destroy(id);
  });

  after(async () => {
    writeFileSync(MAX_INSTANCES, original);
    for (const id of ids) await runtime.destroy(id).catch(() => undefined);
  });

  it("refuses before making anything when the host has no inotify instances left, naming the sysctl and its fix", async () => {
    const id = ids[0];
    try {
      writeFileSync(MAX_INSTANCES, String(rootInotifyInstancesNow() + 2));
      await assert.rejects(runtime.provision(spec(id)), (err: unknown) => {
        assert.ok(err instanceof TempkubeError, String(err));
        assert.equal(err.type, "host");
        assert.match(
          err.message,
          /fs\.inotify\.max_user_instances: \d+ free of \d+, a cluster needs ~\d+; raise it: sysctl -w fs\.inotify\.max_user_instances=\d+/,
        );
        return true;
      });
    } finally {
      writeFileSync(MAX_INSTANCES, original);
    }
    assert.equal(existsSync(join(dataDir(), "clusters", id)), false, "no cluster directory was made");
    assert.deepEqual(await host.leftovers(id), []);
  });

  it("fails the boot within seconds when a component crash-loops, naming it with its last lines, and leaves nothing", async (t) => {
    const id = ids[1];
    let started = 0;
    let failedAfterMs = 0;
    let state: Promise<LocalClusterState> | undefined;
    try {
      await assert.rejects(
        runtime.provision(spec(id), (step) => {
          // The control plane runs and holds its instances; the kubelet, started next, finds none.
          if (step === "kubelets started") {
            state = runtime.readState(id);
            started = Date.now();
            writeFileSync(MAX_INSTANCES, String(rootInotifyInstancesNow()));
          }
        }),
        (err: unknown) => {
          failedAfterMs = Date.now() - started;
          assert.ok(err instanceof TempkubeError, String(err));
          assert.equal(err.type, "runtime");
          assert.ok(started > 0, `the boot reached the step that lowers the limit: ${err.message}`);
          // The first component left without an instance keeps exiting: the kubelet (cAdvisor's watcher).
          assert.match(
            err.message,
            /(kubelet|kube-[a-z-]+|containerd|tempkube-controllers)[\w-]* exited \d+ times during the boot/,
          );
          assert.match(err.message, /--- [\w-]+ \(last lines\):\n/);
          assert.match(err.message, /too many open files/);
          assert.doesNotMatch(err.message, /timed out/);
          t.diagnostic(`failed ${failedAfterMs} ms after the limit was lowered:\n${err.message}`);
          return true;
        },
      );
    } finally {
      writeFileSync(MAX_INSTANCES, original);
    }
    // Cleaned up as any failed provision: no process, namespace, link, rule, mount, cgroup or directory.
    assert.deepEqual(await host.leftovers(id, (await state)?.network), []);
    assert.equal(existsSync(join(dataDir(), "clusters", id)), false);
  });
});
