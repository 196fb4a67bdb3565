import assert from "node:assert/strict";
import { test } from "node:test";
import { componentsExplaining } from "./failure-diagnosis.js";
import { STEPS } from "./steps.js";

const processes = [
  "kine",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "tempkube-controllers",
  "containerd-c1-control-plane",
  "kubelet-c1-control-plane",
  "kube-proxy-c1-control-plane",
  "containerd-c1-worker-1",
  "kubelet-c1-worker-1",
  "kube-proxy-c1-worker-1",
];

test("each step's logs come from the components that explain it, on every node", () => {
  assert.deepEqual(componentsExplaining("apiserver ready", processes), ["kine", "kube-apiserver"]);
  assert.deepEqual(componentsExplaining("images imported", processes), [
    "containerd-c1-control-plane",
    "containerd-c1-worker-1",
  ]);
  assert.deepEqual(componentsExplaining("nodes ready", processes), [
    "kube-controller-manager",
    "containerd-c1-control-plane",
    "kubelet-c1-control-plane",
    "containerd-c1-worker-1",
    "kubelet-c1-worker-1",
  ]);
  assert.deepEqual(componentsExplaining("coredns available", processes), [
    "kube-scheduler",
    "kubelet-c1-control-plane",
    "kube-proxy-c1-control-plane",
    "kubelet-c1-worker-1",
    "kube-proxy-c1-worker-1",
  ]);
  assert.deepEqual(componentsExplaining("cluster dns answers", processes), [
    "kube-proxy-c1-control-plane",
    "kube-proxy-c1-worker-1",
  ]);
});

test("a kube-proxy is not taken for the apiserver, nor the apiserver for a node component", () => {
  assert.deepEqual(componentsExplaining("addons applied", processes), ["kube-apiserver"]);
  assert.deepEqual(componentsExplaining("service rules written", ["kube-apiserver", "kube-proxy-x"]), ["kube-proxy-x"]);
});

test("steps before any process runs name no component", () => {
  assert.deepEqual(componentsExplaining("network", processes), []);
});

test("step names are unique", () => {
  assert.equal(new Set(STEPS.map((s) => s.name)).size, STEPS.length);
});
