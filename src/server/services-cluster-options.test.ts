import assert from "node:assert/strict";
import { it } from "node:test";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { servicesClusterOption, servicesDomainProblem } from "./services-cluster-options.js";

it("--services-cluster: the default size and version when not given, none for no services cluster", () => {
  assert.deepEqual(servicesClusterOption(undefined), {
    kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
    size: "1-mid",
    workers: 0,
    privileged: false,
  });
  assert.equal(servicesClusterOption("none"), undefined);
  assert.throws(
    () => servicesClusterOption("2-big"),
    (e: Error & { type?: string }) => e.type === "invalid-input",
  );
});

it("--services-domain: refused where a cluster's id could be (under the cluster domain), not elsewhere", () => {
  const cd = "clusters.tempkube.local";
  assert.equal(servicesDomainProblem(`services.${cd}`, cd), undefined);
  assert.equal(servicesDomainProblem(`apps.services.${cd}`, cd), undefined);
  assert.equal(servicesDomainProblem("apps.example.com", cd), undefined);
  assert.match(servicesDomainProblem(`apps.${cd}`, cd) ?? "", /at "apps", which a cluster's id may be/);
  assert.match(servicesDomainProblem(`x.apps.${cd}`, cd) ?? "", /at "apps"/);
  assert.match(servicesDomainProblem(cd, cd) ?? "", /is the cluster domain itself/);
});
