import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expirationMs, validateEphemeron } from "./ephemeron-spec.js";

const good = () => ({
  apiVersion: "qualified.io/v1alpha1",
  kind: "Ephemeron",
  metadata: { name: "example" },
  spec: {
    expirationTime: "2026-12-02T01:00:00Z",
    service: {
      image: "busybox:1.35",
      port: 8080,
      command: ["httpd", "-f", "-p", "8080"],
      readinessProbe: { path: "/", periodSeconds: 1 },
      env: [{ name: "GREETING", value: "hi" }],
      podLabels: { "ephemerons.qualified.io/group": "g1.app" },
      resources: { limits: { cpu: "100m", memory: "64Mi" } },
    },
  },
});

const problemsOf = (mutate: (o: ReturnType<typeof good>) => void) => {
  const o = good();
  mutate(o);
  return validateEphemeron(o);
};

describe("validateEphemeron", () => {
  it("accepts the reference's example and a full spec", () => {
    assert.deepEqual(validateEphemeron(good()), []);
    const example = {
      kind: "Ephemeron",
      apiVersion: "qualified.io/v1alpha1",
      metadata: { name: "example" },
      spec: {
        service: { image: "nginx", port: 80, readinessProbe: { path: "/" } },
        expirationTime: "2026-12-02T01:00:00+01:00",
      },
    };
    assert.deepEqual(validateEphemeron(example), []);
  });

  it("names the field of each problem", () => {
    const cases: [(o: any) => void, RegExp][] = [
      [(o) => (o.metadata.name = "Has_Caps"), /^metadata\.name: must be a DNS label/],
      [(o) => (o.metadata.name = "a".repeat(64)), /^metadata\.name/],
      [(o) => (o.metadata.name = "a.b"), /^metadata\.name/],
      [(o) => (o.spec.expirationTime = "tomorrow"), /^spec\.expirationTime: "tomorrow" is not an RFC 3339/],
      [(o) => delete o.spec.expirationTime, /^spec\.expirationTime: is required/],
      [(o) => (o.spec.service.image = "bad image"), /^spec\.service\.image/],
      [(o) => (o.spec.service.port = 0), /^spec\.service\.port: must be an integer from 1 to 65535/],
      [(o) => (o.spec.service.port = 65536), /^spec\.service\.port/],
      [(o) => (o.spec.service.port = "80"), /^spec\.service\.port/],
      [(o) => (o.spec.service.imagePullPolicy = "Sometimes"), /^spec\.service\.imagePullPolicy/],
      [(o) => (o.spec.service.env = [{ name: "1X" }]), /^spec\.service\.env\[0\]\.name/],
      [
        (o) => (o.spec.service.env = [{ name: "X", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }]),
        /^spec\.service\.env\[0\]\.valueFrom: is not a known field \(only name and value/,
      ],
      [(o) => (o.spec.service.readinessProbe = { path: "no-slash" }), /^spec\.service\.readinessProbe\.path/],
      [(o) => (o.spec.service.readinessProbe = { path: "/a b" }), /^spec\.service\.readinessProbe\.path/],
      [(o) => (o.spec.service.readinessProbe.periodSeconds = 0), /^spec\.service\.readinessProbe\.periodSeconds/],
      [(o) => (o.spec.service.readinessProbe.initialDelaySeconds = -1), /initialDelaySeconds/],
      [(o) => (o.spec.service.readinessProbe.timeoutSeconds = 1.5), /timeoutSeconds/],
      [(o) => (o.spec.service.podLabels = { "app.kubernetes.io/managed-by": "me" }), /cannot be overridden/],
      [(o) => (o.spec.service.podLabels = { "app.kubernetes.io/name": "other" }), /cannot be overridden/],
      [(o) => (o.spec.service.podLabels = { "bad key!": "x" }), /not a valid label key/],
      [(o) => (o.spec.service.tlsSecretName = "../etc"), /^spec\.service\.tlsSecretName/],
      [(o) => (o.spec.service.resources = { limits: { cpu: "lots" } }), /^spec\.service\.resources\.limits\.cpu/],
      [(o) => (o.spec.service.volumes = []), /^spec\.service\.volumes: is not a known field/],
      [(o) => (o.spec.service.workingDir = "relative"), /^spec\.service\.workingDir/],
      [(o) => (o.spec.service.command = "sh"), /^spec\.service\.command/],
    ];
    for (const [mutate, expected] of cases) {
      const problems = problemsOf(mutate);
      assert.ok(
        problems.some((p) => expected.test(p)),
        `${expected}: ${JSON.stringify(problems)}`,
      );
    }
  });

  it("never throws on junk", () => {
    for (const junk of [
      null,
      1,
      "x",
      [],
      {},
      { spec: 1 },
      { spec: { service: [] } },
      { metadata: null, spec: { service: {} } },
    ])
      assert.ok(validateEphemeron(junk).length > 0);
  });
});

describe("expirationMs", () => {
  it("parses RFC 3339 and refuses the rest", () => {
    assert.equal(expirationMs({ spec: { expirationTime: "2026-12-02T01:00:00Z" } }), Date.UTC(2026, 11, 2, 1));
    assert.equal(
      expirationMs({ spec: { expirationTime: "2026-12-02T02:00:00.500+01:00" } }),
      Date.UTC(2026, 11, 2, 1, 0, 0, 500),
    );
    assert.equal(expirationMs({ spec: { expirationTime: "1733100000000" } }), undefined);
    assert.equal(expirationMs({ spec: { expirationTime: "2026-13-40T00:00:00Z" } }), undefined);
    assert.equal(expirationMs({ spec: {} }), undefined);
  });
});
