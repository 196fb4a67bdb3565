import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { logger } from "../util/log.js";
import { CertificateAuthority } from "../runtime/local/pki.js";
import { ActivityTracker } from "./activity.js";
import { GatewayCa } from "./gateway-ca.js";
import type { GatewayContext } from "./gateway-context.js";
import { GatewayPaths } from "./gateway-files.js";
import { GatewayMetrics } from "./gateway-metrics.js";
import { writeHttpRoute } from "./gateway-test-fixtures.js";
import { HttpsTermination } from "./https-termination.js";

/** Which certificate a name gets (SNICallback's answer), against route files in a temporary data dir. */
describe("HTTPS termination: the certificate for a name", () => {
  let dir: string;
  let https: HttpsTermination;
  let issuer: CertificateAuthority;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkgwhttps-"));
    const paths = new GatewayPaths(dir);
    const ctx: GatewayContext = {
      paths,
      config: {
        listen: { host: "127.0.0.1", port: 1 },
        httpListen: { host: "127.0.0.1", port: 2 },
        publicAddress: "127.0.0.1",
        clusterDomain: "clusters.tempkube.local",
      },
      activity: new ActivityTracker(),
      metrics: new GatewayMetrics(),
      log: logger.child({}, { level: "silent" }),
    };
    https = new HttpsTermination(ctx, (await GatewayCa.ensure(paths, ["example"])).ca, createServer());
    issuer = await CertificateAuthority.create("tenant-ca");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function givenFiles(name: string, dnsNames: string[]): Promise<{ certFile: string; keyFile: string }> {
    const pair = await issuer.issue({ commonName: name, usage: "server", dnsNames });
    const certFile = join(dir, `${name}.crt`);
    const keyFile = join(dir, `${name}.key`);
    await writeFile(certFile, pair.certPem);
    await writeFile(keyFile, pair.keyPem);
    return { certFile, keyFile };
  }

  it("has none for a name without a route, or whose route has no tls", async () => {
    assert.equal(await https.terminates("nothing.example"), false);
    await assert.rejects(https.contextFor("nothing.example"), /no HTTPS route/);
    await writeHttpRoute(dir, { hostname: "plain.example", target: "127.0.0.1:1" });
    assert.equal(await https.terminates("plain.example"), false);
    await assert.rejects(https.contextFor("plain.example"), /no HTTPS route/);
    await assert.rejects(https.contextFor("../gateway/tls/ca"), /no HTTPS route/);
  });

  it("issues the gateway's certificate for a `gateway` route, whatever the case of the SNI", async () => {
    await writeHttpRoute(dir, { hostname: "gw.example", target: "127.0.0.1:1", tls: "gateway" });
    assert.equal(await https.terminates("GW.example"), true);
    assert.ok(await https.contextFor("GW.example"));
  });

  it("serves a route's own files, read again when they change", async () => {
    const tls = await givenFiles("own", ["own.example"]);
    await writeHttpRoute(dir, { hostname: "own.example", target: "127.0.0.1:1", tls });
    const first = await https.contextFor("own.example");
    assert.equal(await https.contextFor("own.example"), first, "unchanged files: the same context");
    await givenFiles("own", ["own.example"]);
    assert.notEqual(await https.contextFor("own.example"), first, "replaced files: read again");
  });

  it("refuses files that are not the name's, not a pair, or not plain absolute paths", async () => {
    const other = await givenFiles("other", ["other.example"]);
    await writeHttpRoute(dir, { hostname: "thief.example", target: "127.0.0.1:1", tls: other });
    await assert.rejects(https.contextFor("thief.example"), /is not a certificate for thief\.example/);

    const mine = await givenFiles("mine", ["mine.example"]);
    await writeHttpRoute(dir, {
      hostname: "mine.example",
      target: "127.0.0.1:1",
      tls: { certFile: mine.certFile, keyFile: other.keyFile },
    });
    await assert.rejects(https.contextFor("mine.example"), /is not the key of/);

    for (const certFile of ["relative.crt", `${dir}/../${dir.split("/").pop()}/mine.crt`, `${dir}/./mine.crt`]) {
      await writeHttpRoute(dir, { hostname: "mine.example", target: "127.0.0.1:1", tls: { ...mine, certFile } });
      await assert.rejects(https.contextFor("mine.example"), /tls\.certFile must be an absolute path/, certFile);
    }
    await writeHttpRoute(dir, {
      hostname: "mine.example",
      target: "127.0.0.1:1",
      tls: { ...mine, keyFile: join(dir, "missing.key") },
    });
    await assert.rejects(https.contextFor("mine.example"), /cannot read .*missing\.key: ENOENT/);
    await writeHttpRoute(dir, { hostname: "mine.example", target: "127.0.0.1:1", tls: { ...mine, certFile: dir } });
    await assert.rejects(https.contextFor("mine.example"), /is not a regular file/);
  });
});
