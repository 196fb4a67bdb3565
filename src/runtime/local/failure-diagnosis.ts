import { TempkubeError } from "../../util/errors.js";
import { isInstanceOf } from "./components.js";
import { explainedBy, type Step } from "./steps.js";
import { CrashLoopError, type Supervisor } from "./supervisor.js";

/** Of the cluster's processes, those whose logs explain a failure in `step`. */
export function componentsExplaining(step: Step, names: string[]): string[] {
  const kinds = explainedBy(step);
  return names.filter((name) => kinds.some((kind) => isInstanceOf(name, kind)));
}

/** The error a failed provision or start reports: the step, the cause, and the last words of the components behind it. */
export async function describeFailure(
  sup: Supervisor,
  clusterId: string,
  step: Step,
  err: unknown,
): Promise<TempkubeError> {
  const lines: string[] = [];
  if (err instanceof CrashLoopError) {
    // The component that failed is known: its own last words, whatever step it broke.
    lines.push(`--- ${err.component} (last lines):`, ...err.lastLines);
  } else {
    for (const name of componentsExplaining(step, await sup.names().catch(() => [] as string[]))) {
      const tail = await sup.lastLines(name, 8);
      lines.push(tail.length ? `--- ${name} (last lines):` : `--- ${name} (no output yet)`, ...tail);
    }
  }
  const cause = err instanceof Error ? err.message : String(err);
  return new TempkubeError(
    "runtime",
    `cluster ${clusterId}: step "${step}" failed: ${cause}${lines.length ? `\n${lines.join("\n")}` : ""}`,
    { cause: err },
  );
}
