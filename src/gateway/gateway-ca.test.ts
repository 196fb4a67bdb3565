import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readdir, readFile, rm, stat, writeFile, mkdtemp, mkdir, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as x509 from "@peculiar/x509";
import { GatewayCa, LEAF_VALIDITY_MS, permittedDomains } from "./gateway-ca.js";
import { gatewayCaKeyPath, gatewayCaPath, GatewayPaths } from "./gateway-files.js";

/** The gateway's domains in these tests: the cluster domain, and one more for short names. */
const DOMAINS = ["clusters.tempkube.local", "services.clusters.tempkube.local", "example"];

describe("the gateway CA", () => {
  let dir: string;
  let paths: GatewayPaths;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkgwca-"));
    paths = new GatewayPaths(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is made once in <data dir>/gateway/tls/, the key 0600, and kept across starts", async () => {
    const first = await GatewayCa.ensure(paths, DOMAINS);
    assert.equal(first.made, "new");
    assert.equal(gatewayCaPath(paths), join(dir, "gateway", "tls", "ca.crt"));
    assert.equal((await stat(gatewayCaKeyPath(paths))).mode & 0o777, 0o600);
    assert.equal((await stat(gatewayCaPath(paths))).mode & 0o077, 0o044, "the certificate is public");
    const pem = await readFile(gatewayCaPath(paths), "utf8");
    assert.equal(first.ca.certPem, pem);
    const cert = new X509Certificate(pem);
    assert.equal(cert.ca, true);
    assert.deepEqual(await readdir(paths.tlsDir), ["ca.crt", "ca.key"], "no temporary file left");

    const again = await GatewayCa.ensure(paths, DOMAINS);
    assert.equal(again.made, "reused");
    assert.equal(again.ca.certPem, pem);
  });

  it("issues a server certificate for exactly the name asked, verified by the CA, valid 90 days", async () => {
    const { ca } = await GatewayCa.ensure(paths, DOMAINS);
    const caCert = new X509Certificate(ca.certPem);
    const leaf = new X509Certificate((await ca.issue("web.services.clusters.tempkube.local")).certPem);
    assert.equal(leaf.checkIssued(caCert), true);
    assert.equal(leaf.verify(caCert.publicKey), true);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, "DNS:web.services.clusters.tempkube.local");
    assert.equal(leaf.checkHost("web.services.clusters.tempkube.local"), "web.services.clusters.tempkube.local");
    assert.equal(leaf.checkHost("other.services.clusters.tempkube.local"), undefined);
    const life = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
    assert.ok(life <= LEAF_VALIDITY_MS + 120_000 && life > LEAF_VALIDITY_MS - 120_000, `${life} ms`);
    // A name longer than a CN may be still gets its SAN.
    const long = `${"a".repeat(60)}.${"b".repeat(60)}.example`;
    assert.equal(new X509Certificate((await ca.issue(long)).certPem).subjectAltName, `DNS:${long}`);
  });

  it("refuses to issue for anything but a DNS host name", async () => {
    const { ca } = await GatewayCa.ensure(paths, DOMAINS);
    for (const bad of ["", "../etc", "a/b", "*.example", "Upper.example", "a..b", "a.", "x\0y", "a b"])
      await assert.rejects(ca.issue(bad), /not a DNS host name/, JSON.stringify(bad));
  });

  it("keeps one context per name (concurrent handshakes share one issuance)", async () => {
    const { ca } = await GatewayCa.ensure(paths, DOMAINS);
    const a = ca.contextFor("one.example");
    const b = ca.contextFor("one.example");
    assert.equal(a, b);
    assert.equal(await a, await b);
    assert.notEqual(await ca.contextFor("two.example"), await a);
    await assert.rejects(ca.contextFor("../two"), /not a DNS host name/);
  });

  it("makes a new CA when the stored one cannot be used, moving the old files aside", async () => {
    const dir2 = await mkdtemp(join(tmpdir(), "tkgwca-"));
    try {
      const p = new GatewayPaths(dir2);
      const { ca: old } = await GatewayCa.ensure(p, DOMAINS);
      const other = await GatewayCa.ensure(new GatewayPaths(join(dir2, "other")), DOMAINS);
      // Another CA's key beside this certificate.
      await writeFile(gatewayCaKeyPath(p), await readFile(gatewayCaKeyPath(new GatewayPaths(join(dir2, "other")))));
      assert.ok(other);
      const mended = await GatewayCa.ensure(p, DOMAINS);
      assert.deepEqual(Object.keys(mended.made as object), ["replaced"]);
      assert.match((mended.made as { replaced: string }).replaced, /is not the key of/);
      assert.notEqual(mended.ca.certPem, old.certPem);
      const names = (await readdir(p.tlsDir)).sort();
      assert.equal(names.length, 4, names.join(" "));
      assert.ok(names.some((n) => /^ca\.crt\.broken-\d+$/.test(n)));

      // A key alone (a crash between the two renames) is made again too.
      await rm(gatewayCaPath(p));
      const alone = await GatewayCa.ensure(p, DOMAINS);
      assert.match((alone.made as { replaced: string }).replaced, /without its pair/);
      // Other files in tls/ (say, routes' certificates) are left alone.
      await mkdir(join(p.tlsDir, "routes"));
      await rename(gatewayCaPath(p), join(p.tlsDir, "routes", "x"));
      await rm(gatewayCaKeyPath(p));
      assert.equal((await GatewayCa.ensure(p, DOMAINS)).made, "new");
      assert.deepEqual(await readdir(join(p.tlsDir, "routes")), ["x"]);
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  });

  it("permits only its domains, by critical name constraints, and issues for nothing else", async () => {
    const { ca } = await GatewayCa.ensure(paths, DOMAINS);
    // services.clusters.… lies inside clusters.…: one subtree covers both.
    assert.deepEqual(ca.permitted, ["clusters.tempkube.local", "example"]);
    const ext = new x509.X509Certificate(ca.certPem).getExtension("2.5.29.30");
    assert.ok(ext, "a name constraints extension");
    assert.equal(ext.critical, true);
    await assert.rejects(ca.issue("www.bank.test"), /outside the domains this CA may vouch for/);
    await assert.rejects(ca.issue("x.notexample"), /outside the domains/);
    assert.ok(await ca.issue("a.b.example"));
  });

  it("is made again when its constraints do not cover a newly configured domain", async () => {
    const dir3 = await mkdtemp(join(tmpdir(), "tkgwca-"));
    try {
      const p = new GatewayPaths(dir3);
      const first = await GatewayCa.ensure(p, ["clusters.a.test"]);
      assert.equal((await GatewayCa.ensure(p, ["x.clusters.a.test"])).made, "reused", "a name inside is covered");
      const moved = await GatewayCa.ensure(p, ["clusters.a.test", "svc.b.test"]);
      assert.match((moved.made as { replaced: string }).replaced, /do not cover svc\.b\.test/);
      assert.notEqual(moved.ca.certPem, first.ca.certPem);
      assert.deepEqual(moved.ca.permitted, ["clusters.a.test", "svc.b.test"]);
    } finally {
      await rm(dir3, { recursive: true, force: true });
    }
  });

  it("permittedDomains drops duplicates and domains inside another", () => {
    assert.deepEqual(permittedDomains(["Clusters.X", "services.clusters.x", "svc.example", "clusters.x."]), [
      "clusters.x",
      "svc.example",
    ]);
  });
});
