import type { TestCase } from "./junit-report.js";

/**
 * Passed/failed/skipped per SIG, from the spec names' "[sig-<name>]" tag (every upstream
 * e2e spec has one: test/e2e/framework's SIGDescribe). Specs the focus/skip regular
 * expressions left out are reported by ginkgo as skipped with the bare message "skipped"
 * (reporters/junit_report.go: "skipped - <reason>" only for a Skip() at run time): they
 * are counted apart, as "not selected", so a focused run does not show thousands of skips.
 */
export interface SigCounts {
  sig: string;
  passed: number;
  failed: number;
  skipped: number;
}

export interface ConformanceSummary {
  bySig: SigCounts[];
  total: SigCounts;
  /** Specs the filters left out. */
  notSelected: number;
  /** Failed specs and suite nodes (a failed BeforeSuite fails the whole run), in report order. */
  failures: TestCase[];
}

const NO_SIG = "(no sig)";
/** Suite-level nodes (BeforeSuite, ReportAfterSuite, ...): not specs, but their failure matters. */
const SUITE = "(suite)";

export function sigOf(name: string): string {
  return /\[(sig-[\w-]+)\]/.exec(name)?.[1] ?? NO_SIG;
}

export function isNotSelected(c: TestCase): boolean {
  return c.state === "skipped" && (c.message === undefined || c.message === "skipped");
}

export function summarize(cases: readonly TestCase[]): ConformanceSummary {
  const bySig = new Map<string, SigCounts>();
  const total: SigCounts = { sig: "total", passed: 0, failed: 0, skipped: 0 };
  const failures: TestCase[] = [];
  let notSelected = 0;
  for (const c of cases) {
    const suiteNode = c.nodeType !== "It";
    if (suiteNode && c.status !== "failed") continue;
    if (!suiteNode && isNotSelected(c)) {
      notSelected++;
      continue;
    }
    const sig = suiteNode ? SUITE : sigOf(c.name);
    const counts = bySig.get(sig) ?? { sig, passed: 0, failed: 0, skipped: 0 };
    bySig.set(sig, counts);
    counts[c.status]++;
    total[c.status]++;
    if (c.status === "failed") failures.push(c);
  }
  return {
    bySig: [...bySig.values()].sort((a, b) => a.sig.localeCompare(b.sig)),
    total,
    notSelected,
    failures,
  };
}

/** The first line of a failure that says what went wrong ("[FAILED] ..."), else its first line. */
export function failureHeadline(c: TestCase, max = 200): string {
  const lines = (c.message ?? "").split("\n").map((l) => l.trim());
  const line = lines.find((l) => l.startsWith("[FAILED]") || l.startsWith("[PANICKED]")) ?? lines.find((l) => l) ?? "";
  const text = line.replace(/^\[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED)\]\s*/, "");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text || c.state;
}

/** A plain-text table, then the failures, as the script prints them. */
export function formatSummary(summary: ConformanceSummary): string {
  const rows = [["SIG", "PASSED", "FAILED", "SKIPPED"]];
  for (const s of [...summary.bySig, summary.total])
    rows.push([s.sig, String(s.passed), String(s.failed), String(s.skipped)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "),
  );
  lines.push(`(${summary.notSelected} specs not selected by --focus/--skip)`);
  if (summary.failures.length) {
    lines.push("", `Failures (${summary.failures.length}):`);
    for (const f of summary.failures)
      lines.push(`- ${f.nodeType === "It" ? "" : `[${f.nodeType}] `}${f.name}`, `    ${failureHeadline(f)}`);
  }
  return `${lines.join("\n")}\n`;
}
