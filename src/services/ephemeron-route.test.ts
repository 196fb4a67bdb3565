import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { GatewayPaths } from "../gateway/gateway-files.js";
import { readHttpRoute } from "../gateway/route-reader.js";
import { ownedHttpRoutes, removeHttpRoute, routeOwner, writeHttpRoute, writeTlsCopy } from "./ephemeron-route.js";

describe("ephemeron route files", () => {
  it("are written whole for the gateway, never over another owner's, and removed by their owner only", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tk-eph-route-"));
    try {
      const paths = new GatewayPaths(dir);
      const route = {
        hostname: "web.abc123.clusters.example",
        target: "172.30.1.2:31000",
        clusterId: "abc123",
        tls: "gateway" as const,
        owner: routeOwner("abc123", "web"),
      };
      assert.equal(await writeHttpRoute(paths, route), "written");
      assert.equal(await writeHttpRoute(paths, route), "unchanged");
      assert.deepEqual(await readHttpRoute(paths, route.hostname), route);
      assert.deepEqual(
        (await readdir(paths.httpRoutesDir)).filter((f) => f.endsWith(".tmp")),
        [],
      );
      // Another cluster's controller cannot take the name.
      assert.equal(
        await writeHttpRoute(paths, { ...route, owner: routeOwner("other1", "web"), target: "x:1" }),
        "taken",
      );
      await removeHttpRoute(paths, route.hostname, routeOwner("other1", "web"));
      assert.ok(await readHttpRoute(paths, route.hostname));
      assert.deepEqual([...(await ownedHttpRoutes(paths, "abc123"))], [[route.hostname, "web"]]);
      assert.deepEqual([...(await ownedHttpRoutes(paths, "abc12"))], []);

      await assert.rejects(writeHttpRoute(paths, { ...route, hostname: "../../etc/x" }), /not a host name/);
      await assert.rejects(removeHttpRoute(paths, "a/../../b", route.owner), /not a host name/);
      const tls = await writeTlsCopy(paths, route.hostname, { cert: "CERT", key: "KEY" });
      assert.equal((await stat(tls.keyFile)).mode & 0o777, 0o600);
      await removeHttpRoute(paths, route.hostname, route.owner);
      assert.equal(await readHttpRoute(paths, route.hostname), undefined);
      assert.ok(!existsSync(tls.keyFile) && !existsSync(tls.certFile));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
