import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findRelease } from "../setup/catalogue.js";
import { e2eArgs } from "./conformance-run.js";
import { parseConformanceArgs } from "./main.js";
import { imagesToBuild, mergeEntries, parseImageManifest } from "./test-images.js";

// An excerpt of k8s.io/kubernetes v1.34.4 test/utils/image/manifest.go.
const MANIFEST = `
var (
	initRegistry = RegistryList{
		// TODO: https://github.com/kubernetes/kubernetes/issues/130271
		// Eliminate GcAuthenticatedRegistry.
		GcAuthenticatedRegistry: "gcr.io/authenticated-image-pulling",
		PromoterE2eRegistry:     "registry.k8s.io/e2e-test-images",
		BuildImageRegistry:      "registry.k8s.io/build-image",
		InvalidRegistry:         "invalid.registry.k8s.io/invalid",
		GcEtcdRegistry:          "registry.k8s.io",
		GcRegistry:              "registry.k8s.io",
		SigStorageRegistry:      "registry.k8s.io/sig-storage",
		PrivateRegistry:          "gcr.io/k8s-authenticated-test",
		DockerLibraryRegistry:    "docker.io/library",
		CloudProviderGcpRegistry: "registry.k8s.io/cloud-provider-gcp",
	}

	registry, imageConfigs, originalImageConfigs = readRepoList(os.Getenv("KUBE_TEST_REPO_LIST"))
)

func initImageConfigs(list RegistryList) (map[ImageID]Config, map[ImageID]Config) {
	configs := map[ImageID]Config{}
	configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.56"}
	configs[AgnhostPrivate] = Config{list.PrivateRegistry, "agnhost", "2.6"}
	configs[BusyBox] = Config{list.PromoterE2eRegistry, "busybox", "1.37.0-1"}
	configs[Httpd] = Config{list.PromoterE2eRegistry, "httpd", "2.4.38-4"}
	configs[InvalidRegistryImage] = Config{list.InvalidRegistry, "alpine", "3.1"}
	configs[JessieDnsutils] = Config{list.PromoterE2eRegistry, "jessie-dnsutils", "1.7"}
	configs[NodePerfNpbEp] = Config{list.PromoterE2eRegistry, "node-perf/npb-ep", "1.2"}
	// Pause - when these values are updated, also update cmd/kubelet/app/options/container_runtime.go
	configs[Pause] = Config{list.GcRegistry, "pause", "3.10.1"}
`;

describe("test image manifest of a release", () => {
  const manifest = parseImageManifest(MANIFEST);

  it("reads every image id with its registry, name and tag", () => {
    assert.equal(manifest.get("Agnhost"), "registry.k8s.io/e2e-test-images/agnhost:2.56");
    assert.equal(manifest.get("Pause"), "registry.k8s.io/pause:3.10.1");
    assert.equal(manifest.get("NodePerfNpbEp"), "registry.k8s.io/e2e-test-images/node-perf/npb-ep:1.2");
    assert.equal(manifest.size, 8);
  });

  it("builds the images that have a recipe, never the ones meant to be unpullable", () => {
    assert.deepEqual(
      imagesToBuild(manifest).map((i) => i.id),
      ["Agnhost", "BusyBox", "Httpd", "JessieDnsutils", "Pause"],
    );
  });

  it("names what it cannot read", () => {
    assert.throws(() => parseImageManifest("package image"), /no RegistryList\{\.\.\.\} literal/);
    assert.throws(
      () =>
        parseImageManifest(
          `x = RegistryList{\n  GcRegistry: "registry.k8s.io",\n}\nconfigs[X] = Config{list.NoSuchRegistry, "x", "1"}`,
        ),
      /configs\[X\] names list.NoSuchRegistry/,
    );
  });
});

describe("image layers made of several sources", () => {
  it("lets a later entry replace an earlier one at the same path and adds missing parents", () => {
    const merged = mergeEntries(
      [{ type: "file", path: "etc/passwd", content: Buffer.from("a") }],
      [
        { type: "file", path: "etc/passwd", content: Buffer.from("b") },
        { type: "file", path: "usr/local/bin/nnp", content: Buffer.from("x"), mode: 0o6755 },
      ],
    );
    const byPath = new Map(merged.map((e) => [e.path, e]));
    assert.equal((byPath.get("etc/passwd") as { content: Buffer }).content.toString(), "b");
    for (const dir of ["etc", "usr", "usr/local", "usr/local/bin"]) assert.equal(byPath.get(dir)?.type, "dir", dir);
    assert.equal(merged.length, 6);
  });
});

describe("e2e.test command line", () => {
  const base = { kubeconfig: "/r/kubeconfig", kubectl: "/c/kubectl", resultsDir: "/r", timeout: "6h" };

  it("runs the conformance specs, never the Serial ones, against the local provider", () => {
    const args = e2eArgs(base);
    assert.ok(args.includes("--ginkgo.focus=\\[Conformance\\]"));
    assert.ok(args.includes("--ginkgo.skip=\\[Serial\\]"));
    assert.ok(args.includes("--provider=local"));
    assert.ok(args.includes("--report-dir=/r"));
    assert.ok(args.includes("--kubectl-path=/c/kubectl"));
  });

  it("narrows the conformance set with the user's focus (both must match) and adds the user's skip", () => {
    const args = e2eArgs({ ...base, focus: "sig-network.*DNS", skip: "Aggregator" });
    const focus = args.find((a) => a.startsWith("--ginkgo.focus="))!.slice("--ginkgo.focus=".length);
    const re = new RegExp(focus);
    assert.ok(re.test("[sig-network] DNS should provide DNS for the cluster  [Conformance]"));
    assert.ok(!re.test("[sig-network] DNS should resolve DNS of partial qualified names [Feature:X]"));
    assert.ok(!re.test("[sig-network] Services should serve a basic endpoint from pods  [Conformance]"));
    assert.ok(args.includes("--ginkgo.skip=\\[Serial\\]|Aggregator"));
  });
});

describe("scripts/conformance arguments", () => {
  const now = new Date("2026-12-01T21:30:05.123Z");

  it("defaults to the default minor, one worker, a results directory named after version and time", () => {
    const o = parseConformanceArgs([], now);
    assert.equal(o.help, false);
    if (o.help) return;
    assert.equal(o.workers, 1);
    assert.match(o.resultsDir, /conformance-results\/v1\.\d+\.\d+-20261201T213005$/);
  });

  it("takes a version, focus and skip", () => {
    const o = parseConformanceArgs(["--version", "1.37", "--focus", "DNS", "--skip", "Aggregator"], now);
    if (o.help) assert.fail("not help");
    assert.equal(o.release, findRelease("1.37"));
    assert.equal(o.focus, "DNS");
    assert.equal(o.skip, "Aggregator");
  });

  it("refuses what it cannot run, naming the flag", () => {
    assert.throws(
      () => parseConformanceArgs(["--version", "1.20"]),
      /--version 1.20 is not an offered Kubernetes minor/,
    );
    assert.throws(() => parseConformanceArgs(["--workers", "9"]), /--workers must be an integer from 0 to 4/);
    assert.throws(() => parseConformanceArgs(["--timeout", "soon"]), /--timeout must be a duration/);
    assert.throws(() => parseConformanceArgs(["--focus", ""]), /--focus is empty/);
    assert.throws(() => parseConformanceArgs(["--bogus"]), /bogus/);
  });
});
