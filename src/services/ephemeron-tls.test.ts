import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CertificateAuthority } from "../runtime/local/pki.js";
import { certificateProblem } from "./ephemeron-controller.js";

describe("certificateProblem", () => {
  it("accepts a certificate for the host with its key, and says what is wrong with any other", async () => {
    const ca = await CertificateAuthority.create("test");
    const host = "web.abc123.clusters.example";
    const good = await ca.issue({ commonName: host, dnsNames: [host], usage: "server" });
    const wildcard = await ca.issue({ commonName: "w", dnsNames: ["*.abc123.clusters.example"], usage: "server" });
    const other = await ca.issue({ commonName: "x", dnsNames: ["other.example"], usage: "server" });
    assert.equal(certificateProblem({ cert: good.certPem, key: good.keyPem }, host), undefined);
    assert.equal(certificateProblem({ cert: wildcard.certPem, key: wildcard.keyPem }, host), undefined);
    assert.match(certificateProblem({ cert: other.certPem, key: other.keyPem }, host)!, /does not name web\.abc123/);
    assert.match(certificateProblem({ cert: good.certPem, key: other.keyPem }, host)!, /not the key of tls\.crt/);
    assert.match(certificateProblem({ cert: "junk", key: good.keyPem }, host)!, /not a PEM certificate/);
    assert.match(certificateProblem({ cert: good.certPem, key: "junk" }, host)!, /not a PEM private key/);
  });
});
