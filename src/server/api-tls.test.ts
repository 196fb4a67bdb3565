import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  chooseApiTransport,
  hostNames,
  inAddressPlan,
  isLoopbackHost,
  missingNames,
  selfSignedCertificate,
  withListenHost,
} from "./api-tls.js";

describe("API transport choice", () => {
  it("plain HTTP on loopback, self-signed HTTPS elsewhere, the given certificate wherever given", () => {
    for (const host of ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])
      assert.deepEqual(chooseApiTransport(host, {}), { kind: "http" }, host);
    for (const host of ["0.0.0.0", "::", "[::]", "192.168.1.20", "fd00::2", "tk.example.com"])
      assert.deepEqual(chooseApiTransport(host, {}), { kind: "self-signed" }, host);
    const given = { tlsCert: "a.crt", tlsKey: "a.key" };
    for (const host of ["127.0.0.1", "0.0.0.0"])
      assert.deepEqual(chooseApiTransport(host, given), { kind: "given", certFile: "a.crt", keyFile: "a.key" });
  });

  it("--insecure-http gives plain HTTP off loopback, and contradicts a certificate", () => {
    assert.deepEqual(chooseApiTransport("0.0.0.0", { insecureHttp: true }), { kind: "http" });
    assert.throws(
      () => chooseApiTransport("0.0.0.0", { tlsCert: "a.crt", tlsKey: "a.key", insecureHttp: true }),
      /--insecure-http and --tls-cert/,
    );
  });

  it("needs both --tls-cert and --tls-key, naming the one missing", () => {
    assert.throws(() => chooseApiTransport("0.0.0.0", { tlsCert: "a.crt" }), /--tls-cert needs --tls-key/);
    assert.throws(() => chooseApiTransport("127.0.0.1", { tlsKey: "a.key" }), /--tls-key needs --tls-cert/);
  });

  it("knows loopback from the rest", () => {
    assert.ok(isLoopbackHost("127.1.2.3"));
    assert.ok(!isLoopbackHost("128.0.0.1"));
    assert.ok(!isLoopbackHost("0.0.0.0"));
    assert.ok(!isLoopbackHost("::"));
  });
});

describe("self-signed API certificate", () => {
  const names = { dnsNames: ["localhost", "tkhost"], ipAddresses: ["127.0.0.1", "::1", "192.0.2.9", "fd00::9"] };

  it("is made once with the host's names, kept afterwards, made again when an address is missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tkq-tls-"));
    try {
      const first = await selfSignedCertificate(dir, names);
      assert.equal(first.made, "new");
      assert.equal(first.certFile, join(dir, "api-tls", "server.crt"));
      assert.equal((await stat(join(dir, "api-tls", "server.key"))).mode & 0o777, 0o600);
      const cert = new X509Certificate(await readFile(first.certFile, "utf8"));
      assert.equal(cert.fingerprint256, first.fingerprint);
      assert.match(first.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      assert.equal(
        cert.subjectAltName,
        "DNS:localhost, DNS:tkhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:192.0.2.9, IP Address:FD00:0:0:0:0:0:0:9",
      );
      assert.equal(cert.ca, false);
      assert.equal(cert.keyUsage?.includes("1.3.6.1.5.5.7.3.1"), true, "serverAuth");
      assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");

      const again = await selfSignedCertificate(dir, { ...names, ipAddresses: ["fd00:0::9", "192.0.2.9"] });
      assert.equal(again.made, "reused");
      assert.equal(again.fingerprint, first.fingerprint);

      const moved = await selfSignedCertificate(dir, { ...names, ipAddresses: [...names.ipAddresses, "198.51.100.7"] });
      assert.deepEqual(moved.made, { renewed: "it lacked 198.51.100.7" });
      assert.notEqual(moved.fingerprint, first.fingerprint);
      assert.deepEqual(missingNames(await readFile(moved.certFile, "utf8"), names), []);

      await writeFile(join(dir, "api-tls", "server.key"), "garbage");
      const mended = await selfSignedCertificate(dir, names);
      assert.match(JSON.stringify(mended.made), /unreadable/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("adds a particular --listen name or address, not a wildcard", () => {
    const base = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] };
    assert.deepEqual(withListenHost(base, "0.0.0.0"), base);
    assert.deepEqual(withListenHost(base, "[::]"), base);
    assert.deepEqual(withListenHost(base, "0:0::1"), base);
    assert.deepEqual(withListenHost(base, "192.0.2.7").ipAddresses, ["127.0.0.1", "::1", "192.0.2.7"]);
    assert.deepEqual(withListenHost(base, "TK.example.com").dnsNames, ["localhost", "tk.example.com"]);
  });

  it("leaves out tempkube's own cluster addresses, which come and go with clusters", () => {
    assert.ok(inAddressPlan("172.30.3.1"));
    assert.ok(inAddressPlan("10.130.0.1"));
    assert.ok(!inAddressPlan("192.0.2.2"));
    assert.ok(!inAddressPlan("fd00::2"));
    const mine = hostNames();
    assert.ok(mine.dnsNames.includes("localhost"));
    assert.ok(mine.ipAddresses.includes("127.0.0.1") && mine.ipAddresses.includes("::1"));
    assert.ok(!mine.ipAddresses.some(inAddressPlan));
    assert.ok(!mine.ipAddresses.some((a) => a.startsWith("fe80")));
  });
});
