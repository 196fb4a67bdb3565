import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadServicesConfig, parseServicesConfig } from "./presets.js";

const refused = (re: RegExp) => (e: Error & { type?: string }) => e.type === "invalid-input" && re.test(e.message);

describe("--services-config", () => {
  it("reads the reference's own config file unchanged (k8s/api/config.yaml)", async () => {
    const config = await parseServicesConfig(
      `presets:
  nginx:
    image: "nginx"
    port: 80
    readinessProbe:
      path: /

# Allowed apps
apps:
  example: apikey
`,
      "config.yaml",
    );
    assert.deepEqual(config.presets.get("nginx"), { image: "nginx", port: 80, readinessProbe: { path: "/" } });
    assert.equal(config.apps.get("example"), "apikey");
  });

  it("takes every field of the service spec", async () => {
    const config = await parseServicesConfig(
      `presets:
  full:
    image: busybox:1.37
    port: 8080
    command: [httpd, -f, -p, "8080"]
    workingDir: /www
    tlsSecretName: web-tls
    ingressAnnotations: { a: b }
    readinessProbe: { path: /healthz, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 2 }
    imagePullPolicy: IfNotPresent
    resources: { limits: { cpu: 500m, memory: 64Mi }, requests: { cpu: 1 } }
    env: [{ name: A, value: "1" }, { name: B }]
    podLabels: { team: web }
`,
      "c.yaml",
    );
    assert.deepEqual(config.presets.get("full")?.resources, {
      limits: { cpu: "500m", memory: "64Mi" },
      requests: { cpu: "1" },
    });
    assert.deepEqual(config.presets.get("full")?.env, [{ name: "A", value: "1" }, { name: "B" }]);
    assert.equal(config.apps.size, 0);
  });

  it("refuses a bad file, naming the file and the field", async () => {
    const bad = async (text: string, re: RegExp) => assert.rejects(parseServicesConfig(text, "c.yaml"), refused(re));
    await bad("presets: [", /^c\.yaml: not valid YAML/);
    await bad("- a", /^c\.yaml: must be a mapping/);
    await bad("preset: {}", /^c\.yaml: preset is not a known field \(presets, apps\)/);
    await bad("presets:\n  web: { port: 80 }", /^c\.yaml: presets\.web\.image must be an image reference/);
    await bad("presets:\n  web: { image: nginx, port: 0 }", /presets\.web\.port must be an integer from 1 to 65535/);
    await bad("presets:\n  web: { image: nginx, port: 80, colour: red }", /presets\.web\.colour is not a known field/);
    await bad(
      "presets:\n  web: { image: nginx, port: 80, readinessProbe: { path: healthz } }",
      /presets\.web\.readinessProbe\.path must be a URL path starting with "\/"/,
    );
    await bad(
      "presets:\n  web: { image: nginx, port: 80, imagePullPolicy: Sometimes }",
      /presets\.web\.imagePullPolicy must be one of Always, Never, IfNotPresent/,
    );
    await bad(
      "presets:\n  web: { image: nginx, port: 80, resources: { limits: { cpu: lots } } }",
      /presets\.web\.resources\.limits\.cpu must be a resource quantity/,
    );
    await bad("presets:\n  web: { image: nginx, port: 80, env: [{ value: x }] }", /presets\.web\.env\[0\]\.name/);
    await bad(
      "presets:\n  web: { image: nginx, port: 80, podLabels: { app.kubernetes.io/name: other } }",
      /presets\.web\.podLabels\.app\.kubernetes\.io\/name is reserved/,
    );
    await bad(
      "presets:\n  web: { image: nginx, port: 80, podLabels: { ephemerons.qualified.io/group: g.app } }",
      /is reserved/,
    );
    await bad("presets:\n  'a b': { image: nginx, port: 80 }", /presets\.a b: a preset name is/);
    await bad("apps:\n  example: ''", /apps\.example must be the app's key/);
    await bad("apps:\n  example: 42", /apps\.example must be the app's key/);
    await bad(`apps:\n  ${"a".repeat(62)}: key`, /an app name is 1-61/);
  });

  it("reads the file, and says which one it cannot read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tk-presets-"));
    try {
      await writeFile(join(dir, "c.yaml"), "apps: { x: k }\n");
      assert.equal((await loadServicesConfig(join(dir, "c.yaml"))).apps.get("x"), "k");
      await assert.rejects(
        loadServicesConfig(join(dir, "missing.yaml")),
        refused(/--services-config .*missing\.yaml: cannot read it \(ENOENT\)/),
      );
      await writeFile(join(dir, "empty.yaml"), "");
      assert.equal((await loadServicesConfig(join(dir, "empty.yaml"))).presets.size, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
