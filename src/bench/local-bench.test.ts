import assert from "node:assert/strict";
import { test } from "node:test";
import { formatReport, type BenchReport } from "./local-bench.js";

const component = (name: string, privateMiB: number, cores: number) => ({
  component: name,
  privateMiB,
  pssMiB: privateMiB + 10,
  rssMiB: privateMiB + 100,
  cores,
});

test("the bench's report sets the idle cluster against the targets and its apiserver's own share", () => {
  const report: BenchReport = {
    runs: 1,
    kubernetesVersion: "v1.37.2",
    baselineReadyMs: [4000],
    baselineCpuSeconds: [3.1],
    createCpuSeconds: [8.04],
    startCpuSeconds: [6.46],
    createReadyMs: [8000],
    startReadyMs: [6000],
    stopMs: [500],
    createSteps: { network: 300 },
    startSteps: { network: 200 },
    idleMemory: { rssMiB: 800, privateMiB: 350, byProcess: {} },
    idleComponents: [component("kube-apiserver", 170, 0.04), component("kubelet", 25, 0.02)],
    idleCpuWindowSeconds: 15,
    baselineMemory: { rssMiB: 300, privateMiB: 150, byProcess: {} },
  };
  const text = formatReport(report);
  assert.match(text, /cold create → ready\s+p50 8\.00 s .*\(2\.0× baseline; target ≤ 2 s\)/);
  assert.match(text, /bare kine \+ kube-apiserver p50 3\.1, create p50 8\.0, start p50 6\.5 \(a cluster's processes/);
  assert.match(text, /idle cluster: private 350 MiB \(target ≤ 200 MiB\), RSS 800 MiB, CPU 0\.060 core over 15 s/);
  assert.match(text, /of which kube-apiserver alone: private 170 MiB, CPU 0\.040 core/);
  assert.match(text, /kubelet\s+25\.0 MiB\s+35\.0 MiB\s+125\.0 MiB\s+0\.0200 core/);
});
