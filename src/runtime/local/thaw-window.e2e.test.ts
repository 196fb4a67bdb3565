import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { defaultRelease } from "../../setup/catalogue.js";
import { Kubectl } from "../../testing/kubectl.js";
import { unlessRoot } from "../../testing/root.js";
import { applyObjects } from "./apply-manifests.js";
import { BareApiServer } from "./bare-apiserver.js";
import { thawWindowPolicy, writeThawWindow } from "./thaw-window.js";
import { waitFor } from "./wait.js";

const NODE = "n1";
const RUNTIME_DOWN = "container runtime is down";
const PLEG = "PLEG is not healthy: pleg was last seen active 3m12s ago; threshold is 3m0s";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The thaw window's policy in a real kube-apiserver (thaw-window.ts): within a window, a
 * kubelet's report that turns its Ready node NotReady because of state a freeze made stale is
 * refused; every other report, and that one outside a window or from anyone but a kubelet, goes
 * through. The kubelet is played by the admin impersonating `system:node:n1`, which the Node
 * authorizer lets update its own Node's status.
 */
describe("the thaw window in a real apiserver", { skip: unlessRoot("a real apiserver"), timeout: 180_000 }, () => {
  let bare: BareApiServer | undefined;
  let admin: Kubectl;

  type Node = { status: { conditions?: Record<string, string>[] } };
  /** The Node with its Ready condition as a kubelet posts it (the others kept), as JSON. */
  const withReady = async (status: string, message: string, heartbeat: number) => {
    const node = JSON.parse(await admin.run(["get", "node", NODE, "-o", "json"])) as Node;
    const at = new Date(heartbeat).toISOString().replace(/\.\d+Z$/, "Z");
    const ready = {
      type: "Ready",
      status,
      reason: status === "True" ? "KubeletReady" : "KubeletNotReady",
      message,
      lastHeartbeatTime: at,
      lastTransitionTime: at,
    };
    node.status.conditions = [...(node.status.conditions ?? []).filter((c) => c.type !== "Ready"), ready];
    return JSON.stringify(node);
  };
  const asKubelet = ["--as", `system:node:${NODE}`, "--as-group", "system:nodes", "--as-group", "system:authenticated"];
  /**
   * Updates the Node's status as its kubelet (a raw PUT: kubectl's patch would first GET the
   * status subresource, which a node may not); the refusal's text, or undefined when it went through.
   */
  const report = async (status: string, message: string, heartbeat = Date.now(), as = asKubelet) =>
    admin.refusal(
      ["replace", "--raw", `/api/v1/nodes/${NODE}/status`, "-f", "-", ...as],
      await withReady(status, message, heartbeat),
    );
  const ready = async () =>
    (
      JSON.parse(await admin.run(["get", "node", NODE, "-o", "json"])) as {
        status: { conditions: { type: string; status: string }[] };
      }
    ).status.conditions.find((c) => c.type === "Ready")?.status;
  /** Back to Ready, as the kubelet's next sync would do. */
  const readyAgain = async () => {
    assert.equal(await report("True", "kubelet is posting ready status"), undefined);
    assert.equal(await ready(), "True");
  };
  /** Writes the window and gives the apiserver a moment to compile the policy again. */
  const setWindow = async (window: { since?: number; until?: number }) => {
    await writeThawWindow(bare!.api, window);
    await sleep(1000);
  };

  before(async () => {
    bare = await BareApiServer.start(defaultRelease());
    admin = await Kubectl.withKubeconfig(await readFile(bare.kubeconfigPath, "utf8"));
    await applyObjects(bare.api, thawWindowPolicy());
    await admin.run(
      ["create", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: NODE } }),
    );
    await readyAgain();
    // The policy is in force once the apiserver compiled it: an open window refuses the report.
    await writeThawWindow(bare.api, { since: Date.now() - 60_000 });
    await waitFor(
      "the policy in force",
      async () => {
        if ((await report("False", RUNTIME_DOWN)) !== undefined) return true;
        await report("True", "kubelet is posting ready status");
        return false;
      },
      30_000,
      200,
    );
  });
  after(async () => {
    await bare?.stop();
  });

  it("refuses, within an open window, a kubelet's NotReady for a runtime status or a relist gone stale", async () => {
    await setWindow({ since: Date.now() - 60_000 });
    const refusal = await report("False", RUNTIME_DOWN);
    assert.match(refusal ?? "went through", /tempkube: a NotReady report from state that was stale across a freeze/);
    assert.match((await report("False", `${RUNTIME_DOWN}, ${PLEG}`)) ?? "went through", /tempkube:/);
    assert.match((await report("False", PLEG)) ?? "went through", /tempkube:/);
    assert.equal(await ready(), "True", "the node stayed Ready");
    // After the thaw, until its end.
    await setWindow({ since: Date.now() - 60_000, until: Date.now() + 30_000 });
    assert.match((await report("False", RUNTIME_DOWN)) ?? "went through", /tempkube:/);
    assert.equal(await ready(), "True");
  });

  it("lets every other report through: another reason, after the window's end, before the freeze, no window", async () => {
    await setWindow({ since: Date.now() - 60_000 });
    assert.equal(await report("False", "container runtime network not ready: NetworkReady=false"), undefined);
    assert.equal(await ready(), "False", "another reason is reported");
    await readyAgain();
    await setWindow({ since: Date.now() - 60_000, until: Date.now() - 1000 });
    assert.equal(await report("False", RUNTIME_DOWN), undefined, "a runtime down after the window is reported");
    await readyAgain();
    await setWindow({ since: Date.now() });
    assert.equal(
      await report("False", RUNTIME_DOWN, Date.now() - 30_000),
      undefined,
      "a heartbeat from before the freeze",
    );
    await readyAgain();
    await setWindow({});
    assert.equal(await report("False", RUNTIME_DOWN), undefined, "no window open");
    await readyAgain();
  });

  it("binds only kubelets: anyone else's status update goes through, window or not", async () => {
    await setWindow({ since: Date.now() - 60_000 });
    const asAdmin = await report("False", RUNTIME_DOWN, Date.now(), []);
    assert.equal(asAdmin, undefined);
    assert.equal(await ready(), "False");
    await readyAgain();
  });
});
