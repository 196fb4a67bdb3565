import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeEntities, parseJUnitReport } from "./junit-report.js";
import { failureHeadline, formatSummary, sigOf, summarize } from "./summary.js";

// Shaped as e2e.test writes <report-dir>/junit_01.xml (ginkgo v2 GenerateJUnitReportWithConfig
// with OmitFailureMessageAttr and OmitSpecLabels; Go's encoding/xml escaping).
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
  <testsuites tests="7" disabled="3" errors="0" failures="2" time="95.1">
      <testsuite name="Kubernetes e2e suite" package="/tmp" tests="7" disabled="0" skipped="3" errors="0" failures="2" time="95.1" timestamp="2026-12-01T21:00:00">
          <properties>
              <property name="SuiteSucceeded" value="false"></property>
          </properties>
          <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="0.5"></testcase>
          <testcase name="[It] [sig-network] DNS should provide DNS for the cluster  [Conformance]" classname="Kubernetes e2e suite" status="passed" time="12.3"></testcase>
          <testcase name="[It] [sig-network] Services should serve a basic endpoint from pods  [Conformance]" classname="Kubernetes e2e suite" status="failed" time="60.2">
              <failure type="failed">[FAILED] failed to get endpoints: timed out waiting for the condition&#xA;In [It] at: k8s.io/kubernetes/test/e2e/network/service.go:812 @ 12/01/26 21:01:02.123&#xA;</failure>
              <system-err>STEP: creating service &#34;endpoint-test2&#34;</system-err>
          </testcase>
          <testcase name="[It] [sig-node] Pods should be submitted and removed [NodeConformance] [Conformance]" classname="Kubernetes e2e suite" status="passed" time="5"></testcase>
          <testcase name="[It] [sig-storage] CSI Inline Volumes should run through the lifecycle of a CSIDriver [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0.01">
              <skipped message="skipped - Only supported for providers [gce] (not local)"></skipped>
          </testcase>
          <testcase name="[It] [sig-apps] Deployment deployment should support rollover [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0">
              <skipped message="skipped"></skipped>
          </testcase>
          <testcase name="[It] [sig-node] Kubelet with a pod [Serial] runs" classname="Kubernetes e2e suite" status="skipped" time="0">
              <skipped message="skipped"></skipped>
          </testcase>
          <testcase name="[It] [sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current Aggregator [Conformance]" classname="Kubernetes e2e suite" status="timedout" time="300">
              <failure type="timedout">[TIMEDOUT] A suite timeout occurred&#xA;In [It] at: aggregator.go:100</failure>
          </testcase>
          <testcase name="[ReportAfterSuite] Kubernetes e2e JUnit report" classname="Kubernetes e2e suite" status="passed" time="0.002"></testcase>
      </testsuite>
  </testsuites>`;

describe("JUnit report of e2e.test", () => {
  const cases = parseJUnitReport(REPORT);

  it("reads every test case with its node type, spec text, state and time", () => {
    assert.equal(cases.length, 9);
    assert.deepEqual(
      { nodeType: cases[0].nodeType, name: cases[0].name, status: cases[0].status },
      { nodeType: "SynchronizedBeforeSuite", name: "", status: "passed" },
    );
    assert.equal(cases[1].name, "[sig-network] DNS should provide DNS for the cluster  [Conformance]");
    assert.equal(cases[1].nodeType, "It");
    assert.equal(cases[1].seconds, 12.3);
    assert.equal(cases[2].status, "failed");
    assert.equal(cases[7].state, "timedout");
    assert.equal(cases[7].status, "failed");
  });

  it("decodes Go's escaping in failure texts", () => {
    assert.match(
      cases[2].message!,
      /^\[FAILED\] failed to get endpoints: timed out waiting for the condition\nIn \[It\]/,
    );
    assert.equal(decodeEntities("a&#34;b&#39;c&amp;&lt;&gt;&#x9;&#10;"), "a\"b'c&<>\t\n");
  });

  it("keeps skip reasons apart from specs the filters left out", () => {
    assert.equal(cases[4].message, "skipped - Only supported for providers [gce] (not local)");
    assert.equal(cases[5].message, "skipped");
  });

  it("refuses what is not a JUnit report", () => {
    assert.throws(() => parseJUnitReport("<html></html>"), /not a JUnit report/);
  });

  it("reads reports without a status attribute from their child elements", () => {
    const [c] = parseJUnitReport(
      `<testsuite><testcase name="[sig-apps] x" time="1"><failure message="boom">trace</failure></testcase></testsuite>`,
    );
    assert.equal(c.status, "failed");
    assert.equal(c.message, "boom\ntrace");
  });
});

describe("per-SIG summary", () => {
  const summary = summarize(parseJUnitReport(REPORT));

  it("counts passed, failed and run-time skips per SIG, and filtered-out specs apart", () => {
    assert.deepEqual(summary.bySig, [
      { sig: "sig-api-machinery", passed: 0, failed: 1, skipped: 0 },
      { sig: "sig-network", passed: 1, failed: 1, skipped: 0 },
      { sig: "sig-node", passed: 1, failed: 0, skipped: 0 },
      { sig: "sig-storage", passed: 0, failed: 0, skipped: 1 },
    ]);
    assert.deepEqual(summary.total, { sig: "total", passed: 2, failed: 2, skipped: 1 });
    assert.equal(summary.notSelected, 2);
  });

  it("lists failures with the line that says what failed", () => {
    assert.deepEqual(
      summary.failures.map((f) => f.name.split(" ")[1]),
      ["Services", "Aggregator"],
    );
    assert.equal(failureHeadline(summary.failures[0]), "failed to get endpoints: timed out waiting for the condition");
    assert.equal(failureHeadline(summary.failures[1]), "A suite timeout occurred");
  });

  it("counts a failed suite node (a BeforeSuite that could not reach the cluster) as a failure", () => {
    const s = summarize(
      parseJUnitReport(
        `<testsuites><testsuite><testcase name="[SynchronizedBeforeSuite]" status="failed" time="1"><failure type="failed">[FAILED] no nodes Ready</failure></testcase>` +
          `<testcase name="[It] [sig-node] x [Conformance]" status="skipped" time="0"><skipped message="skipped - Spec skipped because an earlier spec in an ordered container failed"></skipped></testcase></testsuite></testsuites>`,
      ),
    );
    assert.deepEqual(s.total, { sig: "total", passed: 0, failed: 1, skipped: 1 });
    assert.equal(s.failures[0].nodeType, "SynchronizedBeforeSuite");
    assert.match(formatSummary(s), /- \[SynchronizedBeforeSuite\] \n {4}no nodes Ready/);
  });

  it("prints a table with a total row", () => {
    const text = formatSummary(summary);
    assert.match(text, /^SIG +PASSED  FAILED  SKIPPED$/m);
    assert.match(text, /^sig-network +1 +1 +0$/m);
    assert.match(text, /^total +2 +2 +1$/m);
    assert.match(text, /\(2 specs not selected by --focus\/--skip\)/);
    assert.match(text, /Failures \(2\):\n- \[sig-network\] Services should serve/);
  });

  it("takes the SIG from the spec text's first [sig-...] tag", () => {
    assert.equal(sigOf("[sig-cli] Kubectl client [sig-network] x"), "sig-cli");
    assert.equal(sigOf("no tag"), "(no sig)");
  });
});
