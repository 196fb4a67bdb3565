import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ensureApiServerCertificate, ensureFrontProxyAssets, FRONT_PROXY_CLIENT_NAME } from "./cluster-assets.js";
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

test("a cluster made before API aggregation gets its own front-proxy CA and client certificate at its next start", async () => {
  const layout = new ClusterLayout("c2", dir);
  const clusterCa = await CertificateAuthority.create("tempkube-c2-ca");
  await mkdir(layout.pkiDir, { recursive: true });
  await writeFile(layout.pki("ca.crt"), clusterCa.certPem);
  await writeFile(layout.pki("ca.key"), clusterCa.keyPem);

  assert.equal(await ensureFrontProxyAssets(layout), true);
  const ca = new X509Certificate(await readFile(layout.pki("front-proxy-ca.crt")));
  const client = new X509Certificate(await readFile(layout.pki("front-proxy-client.crt")));
  assert.ok(ca.ca, "front-proxy-ca.crt is a CA");
  assert.match(ca.subject, /CN=tempkube-c2-front-proxy-ca/);
  assert.equal(client.subject, `CN=${FRONT_PROXY_CLIENT_NAME}`);
  assert.equal(
    FRONT_PROXY_CLIENT_NAME,
    "front-proxy-client",
    "the name kubeadm gives it, which aggregated servers expect",
  );
  assert.deepEqual(client.keyUsage, ["1.3.6.1.5.5.7.3.2"], "a client certificate only (clientAuth)");
  assert.ok(client.verify(ca.publicKey), "signed by the front-proxy CA");
  // The headers' trust must not extend to certificates the cluster's CA signs (every user's).
  assert.ok(!client.verify(new X509Certificate(clusterCa.certPem).publicKey), "not by the cluster's CA");
  assert.notEqual(ca.fingerprint256, new X509Certificate(clusterCa.certPem).fingerprint256);
  assert.ok(client.checkPrivateKey(createPrivateKey(await readFile(layout.pki("front-proxy-client.key")))));
  for (const key of ["front-proxy-ca.key", "front-proxy-client.key"])
    assert.equal((await stat(layout.pki(key))).mode & 0o777, 0o600, `${key} is readable by its owner only`);

  // Present: left as it is.
  const before = await readFile(layout.pki("front-proxy-client.crt"), "utf8");
  assert.equal(await ensureFrontProxyAssets(layout), false);
  assert.equal(await readFile(layout.pki("front-proxy-client.crt"), "utf8"), before);

  // A client certificate lost (a start cut short): issued again from the same CA.
  await rm(layout.pki("front-proxy-client.crt"));
  assert.equal(await ensureFrontProxyAssets(layout), true);
  const again = new X509Certificate(await readFile(layout.pki("front-proxy-client.crt")));
  assert.notEqual(again.fingerprint256, client.fingerprint256);
  assert.ok(again.verify(ca.publicKey), "the CA the apiserver trusts stays the same");
  assert.equal(new X509Certificate(await readFile(layout.pki("front-proxy-ca.crt"))).fingerprint256, ca.fingerprint256);
  assert.ok(again.checkPrivateKey(createPrivateKey(await readFile(layout.pki("front-proxy-client.key")))));
});
