import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ephemeronPod, ephemeronService, isOwnedBy, podReadiness, serviceNodePort } from "./ephemeron-children.js";
import type { Ephemeron } from "./ephemeron-types.js";

const eph = (): Ephemeron => ({
  apiVersion: "qualified.io/v1alpha1",
  kind: "Ephemeron",
  metadata: { name: "web", uid: "u-1" },
  spec: {
    expirationTime: "2026-12-02T01:00:00Z",
    service: {
      image: "busybox:1.35",
      port: 8080,
      command: ["httpd", "-f", "-p", "8080"],
      readinessProbe: { path: "/healthz", periodSeconds: 1 },
      env: [{ name: "A" }, { name: "B", value: "b" }],
      podLabels: { team: "x" },
    },
  },
});

describe("ephemeronPod", () => {
  it("is the reference's Pod, with nothing more than the spec names", () => {
    const pod = ephemeronPod(eph()) as any;
    assert.equal(pod.metadata.namespace, "default");
    assert.equal(pod.metadata.name, "web");
    assert.deepEqual(pod.metadata.labels, {
      team: "x",
      "app.kubernetes.io/name": "web",
      "app.kubernetes.io/managed-by": "ephemeron",
    });
    assert.deepEqual(pod.metadata.ownerReferences, [
      {
        apiVersion: "qualified.io/v1alpha1",
        kind: "Ephemeron",
        name: "web",
        uid: "u-1",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.equal(pod.spec.restartPolicy, "Always");
    assert.equal(pod.spec.enableServiceLinks, false);
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.equal(pod.spec.volumes, undefined);
    assert.equal(pod.spec.hostNetwork, undefined);
    assert.equal(pod.spec.containers.length, 1);
    const c = pod.spec.containers[0];
    assert.equal(c.name, "container");
    assert.deepEqual(c.readinessProbe, { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1 });
    assert.deepEqual(c.env, [
      { name: "A", value: "" },
      { name: "B", value: "b" },
    ]);
    assert.equal(c.securityContext, undefined);
  });

  it("keeps the controller's labels whatever podLabels say", () => {
    const e = eph();
    e.spec.service.podLabels = { "app.kubernetes.io/managed-by": "me", "app.kubernetes.io/name": "other" };
    const pod = ephemeronPod(e) as any;
    assert.equal(pod.metadata.labels["app.kubernetes.io/managed-by"], "ephemeron");
    assert.equal(pod.metadata.labels["app.kubernetes.io/name"], "web");
  });

  it("has no probe and no command when the spec has none", () => {
    const e = eph();
    delete e.spec.service.readinessProbe;
    delete e.spec.service.command;
    const c = (ephemeronPod(e) as any).spec.containers[0];
    assert.equal(c.readinessProbe, undefined);
    assert.equal(c.command, undefined);
  });
});

describe("ephemeronService", () => {
  it("is a NodePort selecting the Pod", () => {
    const svc = ephemeronService(eph()) as any;
    assert.equal(svc.spec.type, "NodePort");
    assert.deepEqual(svc.spec.selector, {
      "app.kubernetes.io/name": "web",
      "app.kubernetes.io/managed-by": "ephemeron",
    });
    assert.deepEqual(svc.spec.ports, [{ name: "http", protocol: "TCP", port: 8080, targetPort: 8080 }]);
  });

  it("gives a node port only while the Service is still what it should be", () => {
    const svc = ephemeronService(eph()) as any;
    svc.spec.ports[0].nodePort = 31000;
    assert.equal(serviceNodePort(svc, eph()), 31000);
    assert.equal(serviceNodePort({ ...svc, spec: { ...svc.spec, type: "ClusterIP" } }, eph()), undefined);
    assert.equal(serviceNodePort({ ...svc, spec: { ...svc.spec, selector: { app: "x" } } }, eph()), undefined);
    assert.equal(
      serviceNodePort({ ...svc, spec: { ...svc.spec, ports: [{ ...svc.spec.ports[0], nodePort: 10250 }] } }, eph()),
      undefined,
    );
  });
});

describe("isOwnedBy", () => {
  it("is by uid, never by name", () => {
    const pod = ephemeronPod(eph()) as any;
    assert.ok(isOwnedBy(pod, eph()));
    const other = eph();
    other.metadata.uid = "u-2";
    assert.ok(!isOwnedBy(pod, other));
    assert.ok(!isOwnedBy({ metadata: { name: "web" } }, eph()));
  });
});

describe("podReadiness", () => {
  it("reads Ready, and says why a Pod will not start", () => {
    assert.equal(podReadiness(undefined).status, "False");
    assert.deepEqual(podReadiness({ status: { conditions: [{ type: "Ready", status: "True" }] } }), {
      status: "True",
      reason: "PodReady",
    });
    for (const reason of ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"]) {
      const v = podReadiness({
        status: {
          conditions: [{ type: "Ready", status: "False" }],
          containerStatuses: [{ state: { waiting: { reason, message: `image "nope": ${reason}` } } }],
        },
      });
      assert.deepEqual(v, { status: "False", reason, message: `image "nope": ${reason}` });
    }
  });
});
