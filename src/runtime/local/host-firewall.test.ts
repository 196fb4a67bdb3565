import assert from "node:assert/strict";
import { it } from "node:test";
import { firewallRules, parseClusterEgress, SERVICES_FOR_CLUSTERS } from "./host-firewall.js";

const target = {
  bridge: "tkb3",
  nodeCidr: "172.30.3.0/24",
  clusterCidr: "10.131.0.0/16",
  internalRanges: ["172.30.0.0/16", "10.128.0.0/9"],
};

function byChain(egress: "internet" | "none"): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [chain, rules] of firewallRules({ ...target, egress }))
    out[`${chain.command} ${chain.table} ${chain.name}`] = rules.map((r) => r.join(" "));
  return out;
}

it("lets a cluster reach of the host only replies and the listed services, then refuses the rest at once", () => {
  const guard = byChain("none")["iptables filter TEMPKUBE-HOST-GUARD"];
  assert.equal(guard[0], "-i tkb3 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT");
  assert.ok(
    guard.includes("-i tkb3 -d 172.30.0.1/32 -p tcp -m tcp --dport 5000 -j ACCEPT"),
    "the registry's read port",
  );
  assert.equal(guard.length, 1 + SERVICES_FOR_CLUSTERS.length + 2);
  assert.deepEqual(guard.slice(-2), [
    "-i tkb3 -p tcp -j REJECT --reject-with tcp-reset",
    "-i tkb3 -j REJECT --reject-with icmp-port-unreachable",
  ]);
  const v6 = byChain("none")["ip6tables filter TEMPKUBE-HOST-GUARD"];
  assert.equal(v6.at(-1), "-i tkb3 -j REJECT --reject-with icmp6-port-unreachable");
  assert.deepEqual(
    byChain("internet")["iptables filter TEMPKUBE-HOST-GUARD"],
    guard,
    "egress changes nothing of the host guard",
  );
});

it("forwards nothing but the cluster's own traffic with egress none", () => {
  const rules = byChain("none");
  assert.deepEqual(rules["iptables filter TEMPKUBE-ISOLATION"], [
    "-i tkb3 -o tkb3 -j ACCEPT",
    "-i tkb3 -j DROP",
    "-o tkb3 -j DROP",
  ]);
  assert.deepEqual(rules["iptables nat TEMPKUBE-EGRESS"], []);
});

it("with egress internet, lets the cluster out (masqueraded) but never to another cluster or link-local", () => {
  const forward = byChain("internet")["iptables filter TEMPKUBE-ISOLATION"];
  const at = (rule: string) => {
    const i = forward.indexOf(rule);
    assert.ok(i >= 0, rule);
    return i;
  };
  const out = at("-i tkb3 -j ACCEPT");
  assert.ok(at("-i tkb3 -o tkb+ -j DROP") < out, "other clusters' bridges first");
  assert.ok(at("-i tkb3 -d 10.128.0.0/9 -j DROP") < out, "other clusters' pods (not routed by the host) first");
  assert.ok(at("-i tkb3 -d 172.30.0.0/16 -j DROP") < out);
  assert.ok(
    at("-i tkb3 -d 169.254.0.0/16 -j REJECT --reject-with icmp-admin-prohibited") < out,
    "link-local and metadata first",
  );
  assert.ok(
    at("-o tkb3 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT") < at("-o tkb3 -j DROP"),
    "only replies come back in",
  );
  assert.deepEqual(byChain("internet")["iptables nat TEMPKUBE-EGRESS"], [
    "-s 172.30.3.0/24 ! -o tkb+ -j MASQUERADE",
    "-s 10.131.0.0/16 ! -o tkb+ -j MASQUERADE",
  ]);
});

it("names the flag and the choices when egress is misspelt", () => {
  assert.equal(parseClusterEgress("--cluster-egress", "none"), "none");
  assert.throws(
    () => parseClusterEgress("--cluster-egress", "open"),
    /--cluster-egress must be one of internet, none, not "open"/,
  );
});
