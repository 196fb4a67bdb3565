import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as x509 from "@peculiar/x509";
import { run } from "../util/exec.js";
import { GatewayCa } from "./gateway-ca.js";
import { gatewayCaKeyPath, gatewayCaPath, GatewayPaths } from "./gateway-files.js";

const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

/** The gateway CA's name constraints as a TLS client checks them (openssl verify). */
describe("the gateway CA, verified by openssl", () => {
  let dir: string;
  let paths: GatewayPaths;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkgwca-"));
    paths = new GatewayPaths(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const verify = (file: string) =>
    run("openssl", ["verify", "-CAfile", gatewayCaPath(paths), file]).then(
      (r) => r.stdout + r.stderr,
      (err: Error) => err.message,
    );

  it("vouches for names in its domains, and not for another site even with its own key", async () => {
    const { ca } = await GatewayCa.ensure(paths, ["clusters.tempkube.local"]);
    const inside = join(dir, "inside.pem");
    await writeFile(inside, (await ca.issue("web.services.clusters.tempkube.local")).certPem);
    assert.match(await verify(inside), /: OK/);

    // A certificate for another site signed with the CA's key, as a thief of the key would make.
    const key = await webcrypto.subtle.importKey(
      "pkcs8",
      x509.PemConverter.decode(await readFile(gatewayCaKeyPath(paths), "utf8"))[0],
      P256,
      false,
      ["sign"],
    );
    const leafKeys = await webcrypto.subtle.generateKey(P256, true, ["sign", "verify"]);
    const forged = await x509.X509CertificateGenerator.create({
      serialNumber: "01",
      subject: "CN=www.bank.test",
      issuer: new x509.X509Certificate(ca.certPem).subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
      signingKey: key as unknown as CryptoKey,
      publicKey: leafKeys.publicKey as unknown as CryptoKey,
      signingAlgorithm: { ...P256, hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "www.bank.test" }], false)],
    });
    const outside = join(dir, "outside.pem");
    await writeFile(outside, forged.toString("pem"));
    assert.match(await verify(outside), /permitted subtree violation/);
  });
});
