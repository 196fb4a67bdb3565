import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ensureApiServerCertificate } from "./cluster-assets.js";
import { ClusterLayout } from "./layout.js";
import type { ClusterNetwork } from "./network.js";
import { CertificateAuthority } from "./pki.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tempkube-assets-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("an apiserver certificate without the cluster's name under the current domain is issued again from its CA", async () => {
  const layout = new ClusterLayout("c1", dir);
  const net = { nodes: [{ ip: "172.30.7.2" }] } as unknown as ClusterNetwork;
  const ca = await CertificateAuthority.create("tempkube-c1-ca");
  await mkdir(layout.pkiDir, { recursive: true });
  await writeFile(layout.pki("ca.crt"), ca.certPem);
  await writeFile(layout.pki("ca.key"), ca.keyPem);
  // As clusters made before the gateway had it: another domain's name.
  const old = await ca.issue({ commonName: "kube-apiserver", usage: "server", dnsNames: ["c1.tempkube.local"] });
  await writeFile(layout.pki("apiserver.crt"), old.certPem);
  await writeFile(layout.pki("apiserver.key"), old.keyPem);

  assert.equal(await ensureApiServerCertificate(layout, "c1", net, "clusters.example"), true);
  const cert = new X509Certificate(await readFile(layout.pki("apiserver.crt")));
  assert.equal(cert.checkHost("c1.clusters.example"), "c1.clusters.example");
  assert.equal(cert.checkHost("c1.tempkube.local"), undefined);
  assert.equal(cert.checkIP("172.30.7.2"), "172.30.7.2");
  assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey), "signed by the cluster's CA");
  assert.ok(cert.checkPrivateKey(createPrivateKey(await readFile(layout.pki("apiserver.key")))), "with its key");

  // Already right: left as it is.
  const before = await readFile(layout.pki("apiserver.crt"), "utf8");
  assert.equal(await ensureApiServerCertificate(layout, "c1", net, "clusters.example"), false);
  assert.equal(await readFile(layout.pki("apiserver.crt"), "utf8"), before);
});
