import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ActivityTracker } from "./activity.js";
import { splitHostPort } from "./gateway-context.js";
import { servedPort } from "./service-lookup.js";
import { clusterIdOfSni } from "./tls-gateway.js";

const DOMAIN = "clusters.tempkube.local";

describe("clusterIdOfSni", () => {
  it("takes exactly <id>.<cluster domain>, case-insensitively", () => {
    assert.equal(clusterIdOfSni(`abc123.${DOMAIN}`, DOMAIN), "abc123");
    assert.equal(clusterIdOfSni(`ABC123.Clusters.Tempkube.Local`, DOMAIN), "abc123");
  });
  it("refuses anything else: other domains, deeper or shorter names, ids tempkube does not make", () => {
    for (const name of [
      DOMAIN,
      `.${DOMAIN}`,
      `x.abc123.${DOMAIN}`,
      `abc123.${DOMAIN}.evil.example`,
      `abc123.clusters.tempkube.localx`,
      `abc123x${DOMAIN}`,
      `1abc.${DOMAIN}`,
      `ab.${DOMAIN}`,
      `abcdefghijklmnopq.${DOMAIN}`,
      `abc-12.${DOMAIN}`,
      `../x.${DOMAIN}`,
      "abc123",
    ])
      assert.equal(clusterIdOfSni(name, DOMAIN), undefined, name);
  });
});

describe("servedPort", () => {
  const lb = (ports: { name?: string; port: number; protocol?: string }[]) => ({
    spec: { type: "LoadBalancer", ports },
  });
  it("prefers the port named http, then 80, then the first TCP port", () => {
    assert.deepEqual(servedPort(lb([{ port: 80 }, { name: "http", port: 8080 }]), "d/s"), { kind: "port", port: 8080 });
    assert.deepEqual(servedPort(lb([{ port: 9000 }, { port: 80 }]), "d/s"), { kind: "port", port: 80 });
    assert.deepEqual(servedPort(lb([{ port: 53, protocol: "UDP" }, { port: 9000 }]), "d/s"), {
      kind: "port",
      port: 9000,
    });
  });
  it("serves only LoadBalancer Services with a TCP port", () => {
    assert.equal(servedPort({ spec: { type: "ClusterIP", ports: [{ port: 80 }] } }, "d/s").kind, "not-served");
    assert.equal(servedPort({ spec: { type: "NodePort", ports: [{ port: 80 }] } }, "d/s").kind, "not-served");
    assert.equal(servedPort({}, "d/s").kind, "not-served");
    assert.equal(servedPort(lb([{ port: 53, protocol: "UDP" }]), "d/s").kind, "not-served");
  });
});

describe("ActivityTracker", () => {
  it("keeps the last open or close and the connections open now", () => {
    let now = 1000;
    const a = new ActivityTracker(500, () => now);
    a.opened("c1");
    now = 2000;
    a.opened("c1");
    now = 3000;
    a.closed("c1");
    assert.deepEqual(a.snapshot(), { since: 500, clusters: { c1: { lastActiveAt: 3000, open: 1 } } });
    a.closed("c1");
    a.closed("c1");
    assert.equal(a.open("c1"), 0, "never below zero");
  });
});

describe("splitHostPort", () => {
  it("splits host:port and [v6]:port", () => {
    assert.deepEqual(splitHostPort("172.30.1.2:6443"), { host: "172.30.1.2", port: 6443 });
    assert.deepEqual(splitHostPort("[fd00::2]:6443"), { host: "fd00::2", port: 6443 });
    assert.throws(() => splitHostPort("172.30.1.2"), /not a host:port/);
  });
});
