import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chooseNodeRelease, kubeletSkewAllowed, type PolicyRelease } from "./kubelet-policy.js";

const release = (minor: string, patch: number, kubeletRunsOnCgroupV1: boolean): PolicyRelease => ({
  minor,
  version: `v${minor}.${patch}`,
  kubeletRunsOnCgroupV1,
});

/** A catalogue of the day 1.37's kubelet drops cgroup v1. */
const DROPPED_IN_37 = [
  release("1.37", 2, false),
  release("1.36", 3, true),
  release("1.35", 4, true),
  release("1.34", 4, true),
  release("1.33", 13, true),
];

describe("kubelet release policy", () => {
  it("while every kubelet runs on cgroup v1 (the catalogue as measured), every release runs its own on both host kinds", () => {
    const allOnV1 = DROPPED_IN_37.map((r) => ({ ...r, kubeletRunsOnCgroupV1: true }));
    for (const cp of allOnV1) {
      for (const host of ["v1", "v2"] as const) {
        const choice = chooseNodeRelease(cp, host, allOnV1);
        assert.ok(choice.ok, `${cp.minor} on cgroup ${host}`);
        assert.equal(choice.kubelet, cp, `${cp.minor} on cgroup ${host}: its own kubelet`);
        assert.equal(choice.kubeProxy, cp);
        assert.equal(choice.differs, false);
        assert.match(choice.reason, new RegExp(`own release ${cp.version.replace(/\./g, "\\.")}`));
      }
    }
  });

  it("on a cgroup v2 host, a release whose kubelet dropped cgroup v1 still runs its own kubelet", () => {
    const choice = chooseNodeRelease(DROPPED_IN_37[0], "v2", DROPPED_IN_37);
    assert.ok(choice.ok);
    assert.equal(choice.kubelet.version, "v1.37.2");
    assert.equal(choice.differs, false);
    assert.match(choice.reason, /cgroup v2 host/);
  });

  it("on a cgroup v1 host, 1.37 without cgroup v1 gets the newest kubelet that has it within the skew (1.36), kube-proxy stays 1.37", () => {
    const choice = chooseNodeRelease(DROPPED_IN_37[0], "v1", DROPPED_IN_37);
    assert.ok(choice.ok);
    assert.equal(choice.kubelet.version, "v1.36.3");
    assert.equal(choice.kubeProxy.version, "v1.37.2");
    assert.equal(choice.differs, true);
    assert.match(choice.reason, /kubelet v1\.36\.3/);
    assert.match(choice.reason, /1\.37's kubelet does not run on this cgroup v1 host/);
    // The older releases are untouched by 1.37's change.
    for (const cp of DROPPED_IN_37.slice(1)) {
      const own = chooseNodeRelease(cp, "v1", DROPPED_IN_37);
      assert.ok(own.ok && own.kubelet === cp && !own.differs, cp.minor);
    }
  });

  it("never picks a kubelet newer than the apiserver, and skips newer releases that keep cgroup v1", () => {
    // 1.36 dropped cgroup v1 and 1.37 brought it back (hypothetical): 1.36's nodes cannot get 1.37's kubelet.
    const catalogue = [release("1.37", 0, true), release("1.36", 0, false), release("1.35", 0, true)];
    const choice = chooseNodeRelease(catalogue[1], "v1", catalogue);
    assert.ok(choice.ok);
    assert.equal(choice.kubelet.minor, "1.35");
  });

  it("goes at most three minors back, whatever the catalogue's order", () => {
    const catalogue = [
      release("1.33", 0, true),
      release("1.37", 0, false),
      release("1.36", 0, false),
      release("1.35", 0, false),
      release("1.34", 0, true),
    ];
    const choice = chooseNodeRelease(catalogue[1], "v1", catalogue);
    assert.ok(choice.ok);
    assert.equal(choice.kubelet.minor, "1.34", "1.33 is four minors older than 1.37: out of the skew");
  });

  it("refuses, saying why, when no kubelet within the skew runs on cgroup v1", () => {
    const catalogue = [
      release("1.40", 0, false),
      release("1.39", 0, false),
      release("1.38", 0, false),
      release("1.37", 0, false),
      release("1.36", 0, true),
    ];
    const choice = chooseNodeRelease(catalogue[0], "v1", catalogue);
    assert.equal(choice.ok, false);
    assert.match(
      choice.reason,
      /Kubernetes 1\.40's kubelet does not run on cgroup v1.*1\.37 to 1\.40.*cgroup v2 host or an older Kubernetes version/,
    );
    // The same catalogue on a cgroup v2 host: fine.
    assert.ok(chooseNodeRelease(catalogue[0], "v2", catalogue).ok);
  });

  it("follows the skew policy's numbers", () => {
    assert.ok(kubeletSkewAllowed("1.37", "1.37"));
    assert.ok(kubeletSkewAllowed("1.37", "1.34"));
    assert.ok(!kubeletSkewAllowed("1.37", "1.33"), "four minors older");
    assert.ok(!kubeletSkewAllowed("1.36", "1.37"), "newer than the apiserver");
    assert.ok(!kubeletSkewAllowed("1.26", "1.23"), "a kubelet older than 1.25 may be only two minors older");
    assert.ok(kubeletSkewAllowed("1.26", "1.24"));
    assert.ok(kubeletSkewAllowed("1.28", "1.25"));
    assert.ok(!kubeletSkewAllowed("1.37", "v1.37.2"), "minors only");
  });
});
