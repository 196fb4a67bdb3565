import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyBusyboxConfig, busyboxConfigProblems, debSrcLines } from "./busybox-build.js";

// An excerpt of busybox 1.35.0's `make defconfig` output, with the lines the official build changes.
const DEFCONFIG = `#
# Automatically generated make config: don't edit
# Busybox version: 1.35.0
#
CONFIG_HAVE_DOT_CONFIG=y
# CONFIG_STATIC is not set
CONFIG_LAST_SUPPORTED_WCHAR=767
# CONFIG_AR is not set
# CONFIG_FEATURE_AR_LONG_FILENAMES is not set
# CONFIG_FEATURE_AR_CREATE is not set
CONFIG_SYNC=y
CONFIG_FEATURE_SYNC_FANCY=y
CONFIG_NC=y
`;

describe("busybox configuration (docker-library/busybox's glibc builder)", () => {
  it("sets AR, UTF-8 input off and unsets FEATURE_SYNC_FANCY, leaving the rest of defconfig", () => {
    const config = applyBusyboxConfig(DEFCONFIG);
    for (const line of [
      "CONFIG_AR=y",
      "CONFIG_FEATURE_AR_CREATE=y",
      "CONFIG_FEATURE_AR_LONG_FILENAMES=y",
      "CONFIG_LAST_SUPPORTED_WCHAR=0",
      "# CONFIG_FEATURE_SYNC_FANCY is not set",
      "CONFIG_NC=y",
      "CONFIG_SYNC=y",
      "# CONFIG_STATIC is not set",
    ]) {
      assert.ok(config.split("\n").includes(line), line);
    }
    assert.doesNotMatch(config, /CONFIG_LAST_SUPPORTED_WCHAR=767|CONFIG_FEATURE_SYNC_FANCY=y|# CONFIG_AR is not set/);
    assert.deepEqual(busyboxConfigProblems(config), []);
  });

  it("appends a setting defconfig does not mention, before the final newline", () => {
    const config = applyBusyboxConfig("CONFIG_NC=y\n");
    assert.ok(config.endsWith("CONFIG_LAST_SUPPORTED_WCHAR=0\n"));
    assert.equal(config.split("\n").filter((l) => l === "CONFIG_AR=y").length, 1);
  });

  it("names every setting oldconfig lost or kept", () => {
    assert.deepEqual(busyboxConfigProblems(DEFCONFIG), [
      "CONFIG_FEATURE_SYNC_FANCY is set, wanted unset",
      "CONFIG_AR=y is missing",
      "CONFIG_FEATURE_AR_CREATE=y is missing",
      "CONFIG_FEATURE_AR_LONG_FILENAMES=y is missing",
      "CONFIG_LAST_SUPPORTED_WCHAR=0 is missing",
    ]);
  });
});

describe("busybox source through apt", () => {
  it("turns the Debian archives apt uses into deb-src lines, skipping other origins and components", () => {
    const indextargets = [
      "http://deb.debian.org/debian/dists/bookworm/\tbookworm\tmain\tDebian",
      "http://deb.debian.org/debian/dists/bookworm-updates/\tbookworm-updates\tmain\tDebian",
      "http://deb.debian.org/debian-security/dists/bookworm-security/\tbookworm-security\tmain\tDebian",
      "http://deb.debian.org/debian/dists/bookworm/\tbookworm\tmain\tDebian",
      "https://deb.nodesource.com/node_20.x/dists/nodistro/\tnodistro\tmain\tNode Source",
      "http://deb.debian.org/debian/dists/bookworm/\tbookworm\tcontrib\tDebian",
      "",
    ].join("\n");
    assert.deepEqual(debSrcLines(indextargets, "/usr/share/keyrings/debian-archive-keyring.gpg"), [
      "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian/ bookworm main",
      "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian/ bookworm-updates main",
      "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security/ bookworm-security main",
    ]);
    assert.deepEqual(debSrcLines("http://mirror.example/debian/dists/bookworm/\tbookworm\tmain\tDebian\n"), [
      "deb-src http://mirror.example/debian/ bookworm main",
    ]);
  });
});
