import type { StepTimings } from "../driver.js";
import type { Step } from "./steps.js";

/** Times the consecutive steps of an operation; the current step names what failed. */
export class StepTimer {
  readonly timings: StepTimings = {};
  private readonly started = Date.now();
  private stepStarted = Date.now();

  constructor(
    public step: Step,
    private readonly onStep?: (step: string) => void,
  ) {}

  mark(next: Step): void {
    this.timings[this.step] = Date.now() - this.stepStarted;
    this.step = next;
    this.stepStarted = Date.now();
    this.onStep?.(next);
  }

  /** Closes the last step and adds the total. */
  finish(): StepTimings {
    this.timings[this.step] = Date.now() - this.stepStarted;
    this.timings.total = Date.now() - this.started;
    return this.timings;
  }
}
