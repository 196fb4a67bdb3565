/**
 * Reads the JUnit report e2e.test writes with --report-dir (<dir>/junit_01.xml): one
 * <testsuite> of <testcase> elements, written by ginkgo's reporters.GenerateJUnitReportWithConfig
 * (ginkgo v2 reporters/junit_report.go) with the configuration of
 * k8s.io/kubernetes test/e2e/framework/internal/junit/junit.go: no failure message
 * attribute (the text is the element's content), no labels appended to names.
 *
 * A test case's name is "[<leaf node type>] <full text>", e.g.
 * "[It] [sig-network] DNS should provide DNS for the cluster  [Conformance]"; suite nodes
 * ("[SynchronizedBeforeSuite]", "[ReportAfterSuite] Kubernetes e2e suite report") are
 * cases too. Its status is ginkgo's SpecState: passed, skipped, pending, failed, timedout,
 * aborted, panicked, interrupted (types/types.go, SpecState.String).
 */
export type TestStatus = "passed" | "failed" | "skipped";

export interface TestCase {
  /** The name without the "[It] " prefix: the spec's full text. */
  name: string;
  /** "It" for specs, the suite node's type otherwise (SynchronizedBeforeSuite, ReportAfterSuite, ...). */
  nodeType: string;
  /** ginkgo's own state, as written. */
  state: string;
  status: TestStatus;
  seconds: number;
  /**
   * For a failure: its text (location and message). For a skip: ginkgo's message, "skipped"
   * for specs the focus/skip filters left out, "skipped - <reason>" for a Skip() at run time.
   */
  message?: string;
}

const FAILED_STATES = new Set(["failed", "timedout", "aborted", "panicked", "interrupted", "invalid"]);

/** Every <testcase> of the report, in document order. */
export function parseJUnitReport(xml: string): TestCase[] {
  if (!/<testsuites?[\s>]/.test(xml)) throw new Error("not a JUnit report: no <testsuites> or <testsuite> element");
  const cases: TestCase[] = [];
  // A test case is either self-closing or has a body; bodies never nest test cases.
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = attributes(m[1]);
    const body = m[3] ?? "";
    const fullName = attrs.name ?? "";
    const typed = /^\[([A-Za-z]+)\](?:\s+([\s\S]*))?$/.exec(fullName);
    const nodeType = typed ? typed[1] : "It";
    const name = typed ? (typed[2] ?? "") : fullName;
    const state = attrs.status ?? stateFromBody(body);
    const status: TestStatus = FAILED_STATES.has(state)
      ? "failed"
      : state === "skipped" || state === "pending"
        ? "skipped"
        : "passed";
    cases.push({
      name,
      nodeType,
      state,
      status,
      seconds: Number(attrs.time ?? 0) || 0,
      message: status === "passed" ? undefined : messageOf(body),
    });
  }
  return cases;
}

/** Reports written by other tools carry no status attribute: the child element says it. */
function stateFromBody(body: string): string {
  if (/<failure\b/.test(body)) return "failed";
  if (/<error\b/.test(body)) return "panicked";
  if (/<skipped\b/.test(body)) return "skipped";
  return "passed";
}

function messageOf(body: string): string | undefined {
  const el = /<(failure|error|skipped)\b([^>]*?)(\/>|>([\s\S]*?)<\/\1>)/.exec(body);
  if (!el) return undefined;
  const attrs = attributes(el[2]);
  const text = decodeEntities(stripCdata(el[4] ?? "")).trim();
  const message = [attrs.message, text].filter((s) => s && s.trim()).join("\n");
  return message || undefined;
}

function attributes(source: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of source.matchAll(/([A-Za-z_:][-\w:.]*)\s*=\s*("([^"]*)"|'([^']*)')/g))
    out[m[1]] = decodeEntities(m[3] ?? m[4] ?? "");
  return out;
}

function stripCdata(text: string): string {
  return text.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, "$1");
}

const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Go's encoding/xml escapes " ' & < > and tab/newline/CR as &#34; &#39; &amp; &lt; &gt; &#x9; &#xA; &#xD;. */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith("#x")) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith("#")) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    return NAMED[ref] ?? whole;
  });
}
