import { progress } from "../util/progress.js";

/** Prints each step as it starts and how long the previous one took: "  ✓ network (0.1s)". */
export function stepPrinter(): { onStep: (step: string) => void; done: () => void } {
  let current: string | undefined;
  let since = Date.now();
  const finish = () => {
    if (current) progress(`  ✓ ${current} (${((Date.now() - since) / 1000).toFixed(1)}s)`);
  };
  return {
    onStep(step) {
      finish();
      current = step;
      since = Date.now();
    },
    done: finish,
  };
}
