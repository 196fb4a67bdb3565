import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { startServer, type RunningServer } from "../server/server.js";
import { tempkube } from "../testing/cli.js";
import { FakeDriver } from "../testing/fakes.js";

/** The CLI's server commands as separate processes against a real server (fake runtime driver: clusters are the e2e tests' job). */
describe("CLI over the REST API (fake driver)", () => {
  let server: RunningServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const driver = new FakeDriver();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-cli-api-"));
    server = await startServer({ host: "127.0.0.1", port: 0, dataDir: dir, driver, warmPool: 1 });
    env = {
      TEMPKUBE_URL: server.url,
      TEMPKUBE_TOKEN: (await readFile(server.adminTokenFile, "utf8")).trim(),
      KUBECONFIG: join(dir, "kube", "config"),
      TEMPKUBE_LOG_LEVEL: "warn",
    };
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("has help with examples on every command", async () => {
    const commands = [
      "create",
      "list",
      "get",
      "kubeconfig",
      "stop",
      "start",
      "extend",
      "delete",
      "load-image",
      "token create",
      "token list",
      "token revoke",
      "token whoami",
      "service create",
      "service list",
      "service get",
      "service extend",
      "service delete",
      "server",
      "gateway",
      "doctor",
      "versions",
      "versions install",
      "setup",
      "up",
      "bench",
      "runtime create",
      "runtime list",
      "runtime status",
      "runtime stop",
      "runtime start",
      "runtime destroy",
      "runtime kubeconfig",
      "runtime load-image",
    ].map((c) => c.split(" "));
    for (const cmd of commands) {
      const res = await tempkube([...cmd, "--help"], env);
      assert.equal(res.code, 0, cmd.join(" "));
      assert.match(res.stdout, /Example/, cmd.join(" "));
    }
  });

  it("manages tokens; a limited token's refusals exit 7 with the reason", async () => {
    const made = await tempkube(
      ["token", "create", "ci", "--max-clusters", "1", "--sizes", "1-small", "--max-ttl", "30m"],
      env,
    );
    assert.equal(made.code, 0, made.stderr);
    const ci = made.stdout.trim();
    assert.match(ci, /^tk_/);
    assert.match(made.stderr, /clusters 1, ttl 30m, sizes 1-small, baseline/);
    const asCi = { ...env, TEMPKUBE_TOKEN: ci };
    assert.match((await tempkube(["token", "whoami"], asCi)).stdout, /^ci \(token 2\)/);
    assert.match((await tempkube(["token", "list"], env)).stdout, /ci\s+clusters 1/);
    const list = await tempkube(["token", "list"], asCi);
    assert.equal(list.code, 7);
    assert.match(list.stderr, /not an admin token/);
    const big = await tempkube(["create", "--size", "1-mid", "--ttl", "10m"], asCi);
    assert.equal(big.code, 7);
    assert.match(big.stderr, /may not create size "1-mid"/);
    assert.equal((await tempkube(["create", "--size", "1-small", "--ttl", "10m", "--no-wait"], asCi)).code, 0);
    const second = await tempkube(["create", "--size", "1-small", "--ttl", "10m"], asCi);
    assert.equal(second.code, 7);
    assert.match(second.stderr, /quota/);
    assert.equal((await tempkube(["token", "revoke", "2"], env)).code, 0);
    assert.equal((await tempkube(["list"], asCi)).code, 7, "revoked");
    assert.equal((await tempkube(["token", "revoke", "nope"], env)).code, 2);
  });

  it("creates with live progress, merges into the user's kubeconfig, and takes it out again on delete", async () => {
    // The user's own kubeconfig has another cluster: it stays.
    const mine = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "work", cluster: { server: "https://work" } }],
      users: [{ name: "me", user: {} }],
      contexts: [{ name: "work", context: { cluster: "work", user: "me" } }],
      "current-context": "work",
    };
    await mkdir(join(dir, "kube"), { recursive: true });
    await writeFile(env.KUBECONFIG!, YAML.stringify(mine));

    const created = await tempkube(["create", "--merge", "--ttl", "20m", "--label", "pr=42", "--privileged"], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    assert.match(created.stderr, /✓ (pending|provisioning)/, "live phases");
    assert.match(created.stderr, new RegExp(`cluster ${id} ready in .*context tempkube-${id}, now current`));
    let config = YAML.parse(await readFile(env.KUBECONFIG!, "utf8"));
    assert.equal(config["current-context"], `tempkube-${id}`);
    assert.deepEqual(
      config.contexts.map((c: { name: string }) => c.name),
      ["work", `tempkube-${id}`],
    );

    assert.match((await tempkube(["list", "--label", "pr=42"], env)).stdout, new RegExp(id));
    assert.doesNotMatch((await tempkube(["list", "--label", "pr=43"], env)).stdout, new RegExp(id));
    assert.equal((await tempkube(["list", "--label", "pr"], env)).code, 2);

    await writeFile(join(dir, "app.tar"), Buffer.alloc(2048));
    const loaded = await tempkube(["load-image", join(dir, "app.tar"), "--cluster", id], env);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.ok(driver.calls.includes(`loadImage ${id}`));
    assert.equal((await tempkube(["load-image", join(dir, "missing.tar")], env)).code, 2);

    const stopped = await tempkube(["stop", id], env);
    assert.match(stopped.stdout, /stopped/);
    assert.equal((await tempkube(["stop", id], env)).code, 4, "already stopped: conflict");
    const deleted = await tempkube(["delete", id], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stderr, /removed cluster .* from/);
    config = YAML.parse(await readFile(env.KUBECONFIG!, "utf8"));
    assert.deepEqual(
      config.contexts.map((c: { name: string }) => c.name),
      ["work"],
    );
    assert.equal((await tempkube(["get", "nosuch1"], env)).code, 3);
  });

  it("hands out the warm pool's cluster at once", async () => {
    // The pool refills after the previous test's claim; wait for it.
    for (let i = 0; i < 100 && !(await server.store.clusters.all()).some((r) => r.pooled && r.phase === "running"); i++)
      await new Promise((r) => setTimeout(r, 50));
    const created = await tempkube(["create", "--kubeconfig", join(dir, "kc")], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /from the warm pool/);
    assert.match(await readFile(join(dir, "kc"), "utf8"), new RegExp(`tempkube-${created.stdout.trim()}`));
  });
});
