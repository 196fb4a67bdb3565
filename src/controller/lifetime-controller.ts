import { EventEmitter } from "node:events";
import {
  expiryDue,
  expiryOutcome,
  isSettled,
  nextWakeUp,
  warningAt,
  type ClusterRecord,
} from "../core/cluster-record.js";
import type { Clock } from "../core/clock.js";
import type { RuntimeDriver } from "../runtime/driver.js";
import type { Store } from "../store/store.js";
import type { ClusterSpec } from "../core/cluster-spec.js";
import { newPooledRecord, poolPlan } from "../core/warm-pool.js";
import { CoalescingTask } from "../util/coalescing-task.js";
import { logger } from "../util/log.js";
import { DEFAULT_WARNING_MS, onExpiryWarning, onPhaseChange, type NotificationPolicy } from "../core/notifications.js";
import type { Notifier } from "./notifier.js";

/**
 * Makes the runtime match the store. Level-triggered: each pass reads every live cluster,
 * applies expiry (exact: a timer is set for the next expiry, no polling), and starts at
 * most one runtime operation per cluster. Killed at any point, the next process's first
 * pass picks up where this one stopped: phases record what was under way.
 */
export class LifetimeController extends EventEmitter {
  private readonly busy = new Set<string>();
  private timer: unknown;
  private readonly passes = new CoalescingTask(
    () => this.reconcile(),
    (err) => logger.error({ err }, "reconcile pass failed"),
  );

  private readonly warningMs: number;
  /** Pool boots wait after failures (a broken setup must not loop on provisioning). */
  private poolFailures = 0;
  private poolRetryAt = 0;

  constructor(
    private readonly store: Store,
    private readonly driver: RuntimeDriver,
    private readonly clock: Clock,
    private readonly notifications: { notifier?: Notifier; options: NotificationPolicy } = { options: {} },
    /** Clusters of this shape kept booted for creates to claim. */
    private readonly pool: { size: number; shape?: Omit<ClusterSpec, "id"> } = { size: 0 },
  ) {
    super();
    this.warningMs = notifications.options.warningMs ?? DEFAULT_WARNING_MS;
  }

  start(): void {
    this.passes.start();
  }

  /** Waits for running operations to finish; leaves clusters as they are. */
  async stop(): Promise<void> {
    await this.passes.stop();
    if (this.timer) this.clock.clearTimer(this.timer);
    await this.idle();
  }

  /** Resolves when no pass and no runtime operation is under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.passes.busy || this.busy.size) await new Promise((r) => setTimeout(r, 10));
  }

  /** Asks for a reconcile pass soon (after a change in the store). */
  trigger(): void {
    this.passes.trigger();
  }

  /** Resolves once a cluster is settled (running, stopped, terminated or failed). */
  async waitSettled(id: string, timeoutMs: number): Promise<ClusterRecord | undefined> {
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const r = await this.store.clusters.get(id);
      if (!r || isSettled(r) || this.clock.now() > deadline) return r;
      // Woken by the cluster's next change; the timer re-reads the store in case that change
      // was emitted between the read above and the listener below.
      await new Promise<void>((resolve) => {
        const event = `changed:${id}`;
        const done = () => {
          this.clock.clearTimer(t);
          this.off(event, done);
          resolve();
        };
        const t = this.clock.setTimer(done, 500);
        this.on(event, done);
      });
    }
  }

  private async reconcile(): Promise<void> {
    const now = this.clock.now();
    const live = (await this.store.clusters.all()).filter((r) => r.phase !== "terminated");
    for (const r of live) {
      let record = r;
      const warnAt = warningAt(record, this.warningMs);
      if (warnAt !== undefined && now >= warnAt && now < record.expiresAt) {
        // Queued once per expiry (dedupe key); later passes change nothing.
        await this.store.clusters.update(
          record.id,
          {},
          { now, notify: onExpiryWarning(now, this.notifications.options) },
        );
        this.notifications.notifier?.trigger();
      }
      if (expiryDue(record, now)) {
        record = await this.store.clusters.update(
          record.id,
          { desired: expiryOutcome(record), generation: record.generation + 1 },
          { now },
        );
        logger.info({ clusterId: record.id, desired: record.desired }, "cluster expired");
        this.emit("expired", record);
      }
      if (!this.busy.has(record.id)) this.act(record);
    }
    await this.keepPoolLevel(live, now);
    this.scheduleExpiry(live, now);
  }

  /** Boots pool members up to the pool size; retires failed and surplus ones. */
  private async keepPoolLevel(live: ClusterRecord[], now: number): Promise<void> {
    if (!this.pool.shape) return;
    const plan = poolPlan(live, this.pool.size);
    for (const r of plan.retire)
      await this.store.clusters.update(r.id, { desired: "terminated", generation: r.generation + 1 }, { now });
    // Booting competes for the same cores as a user's create or start: the pool waits its turn.
    const userWaiting = live.some((r) => !r.pooled && ["pending", "provisioning", "starting"].includes(r.phase));
    if (userWaiting || now < this.poolRetryAt) return;
    for (let i = 0; i < plan.boot; i++) await this.store.clusters.insert(newPooledRecord(this.pool.shape, now));
    if (plan.boot || plan.retire.length) this.trigger();
  }

  private scheduleExpiry(records: ClusterRecord[], now: number): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    let next = nextWakeUp(records, now, this.warningMs);
    if (this.poolRetryAt > now && (next === undefined || this.poolRetryAt < next)) next = this.poolRetryAt;
    // The pass took time since `now` was read: the delay counts from the clock as it is now.
    if (next !== undefined) this.timer = this.clock.setTimer(() => this.trigger(), next - this.clock.now());
  }

  /** Starts the one operation that brings the runtime closer to the desired state, if any. */
  private act(r: ClusterRecord): void {
    const step = this.nextStep(r);
    if (!step) return;
    this.busy.add(r.id);
    void (async () => {
      try {
        await this.setPhase(r.id, step.during);
        await step.run();
        const done = await this.setPhase(r.id, step.after, {
          lastError: null,
          ...(step.timings ? { timings: step.timings() } : {}),
        });
        if (step.during === "provisioning" && r.pooled) this.poolFailures = 0;
        if (step.during === "provisioning" && !r.pooled) this.emit("ready", done);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        logger.warn({ clusterId: r.id, err: message }, "runtime operation failed");
        if (r.pooled) {
          this.poolFailures++;
          this.poolRetryAt = this.clock.now() + Math.min(30 * 60_000, 30_000 * 2 ** (this.poolFailures - 1));
        }
        await this.setPhase(r.id, "failed", { lastError: message });
      } finally {
        this.busy.delete(r.id);
        this.trigger();
      }
    })();
  }

  private nextStep(r: ClusterRecord):
    | {
        during: ClusterRecord["phase"];
        after: ClusterRecord["phase"];
        run: () => Promise<unknown>;
        timings?: () => Record<string, number>;
      }
    | undefined {
    if (r.phase === "failed" && r.desired !== "terminated") return undefined;
    let timings: Record<string, number> | undefined;
    switch (r.desired) {
      case "running":
        if (r.phase === "running") return undefined;
        if (r.phase === "pending" || r.phase === "provisioning") {
          return {
            during: "provisioning",
            after: "running",
            timings: () => timings ?? {},
            run: async () => {
              // A provision cut short (server killed) left pieces behind: clear them first.
              if (r.phase === "provisioning") await this.driver.destroy(r.id).catch(() => undefined);
              timings = (await this.driver.provision(r.spec)).timings;
            },
          };
        }
        return { during: "starting", after: "running", run: () => this.driver.start(r.id) };
      case "stopped":
        if (r.phase === "stopped") return undefined;
        if (r.phase === "pending") return { during: "stopped", after: "stopped", run: async () => undefined };
        return { during: "stopping", after: "stopped", run: () => this.driver.stop(r.id) };
      case "terminated":
        return { during: "terminating", after: "terminated", run: () => this.driver.destroy(r.id) };
    }
  }

  private async setPhase(
    id: string,
    phase: ClusterRecord["phase"],
    extra: Partial<ClusterRecord> = {},
  ): Promise<ClusterRecord> {
    const now = this.clock.now();
    const r = await this.store.clusters.update(
      id,
      { phase, ...extra },
      { now, notify: onPhaseChange(now, this.notifications.options) },
    );
    this.notifications.notifier?.trigger();
    this.emit(`changed:${id}`, r);
    this.emit("phase", r);
    return r;
  }
}
