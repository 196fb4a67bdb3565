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
import { hostLoad, newPooledRecord, poolBootRefusal, poolQuietUntil, poolsPlan } from "../core/warm-pool.js";
import { profileLabel, type PoolProfile } from "../core/pool-profiles.js";
import { findRelease } from "../setup/catalogue.js";
import { TempkubeError } from "../util/errors.js";
import { CoalescingTask } from "../util/coalescing-task.js";
import { logger } from "../util/log.js";
import { DEFAULT_WARNING_MS, onExpiryWarning, onPhaseChange, type NotificationPolicy } from "../core/notifications.js";
import type { Notifier } from "./notifier.js";
import {
  frozenToSleep,
  IDLE_CHECK_MS,
  isFreezable,
  isIdle,
  mayFallAsleep,
  mayFreeze,
  sleepFieldsFor,
} from "../core/idle.js";
import type { GatewayLink } from "./gateway-link.js";
import type { ClusterActivity, GatewayActivity } from "../gateway/gateway-files.js";

/** The warm pools the controller keeps level (core/warm-pool.ts poolsPlan). */
export interface WarmPools {
  profiles: readonly PoolProfile[];
  /** Users' and pooled clusters running at once on the host: pools count against it (none: unbounded). */
  hostCapacity?: number;
}

const sameRelease = (a: string, b: string) => findRelease(a)?.version === findRelease(b)?.version;

/** Clusters found idle in a pass, each with its activity as then seen (none: no connection ever). */
type IdleClusters = Map<string, ClusterActivity | undefined>;

/** What a pass found idle: to put to sleep, and (not sleeping) to freeze. */
interface Idleness {
  sleep: IdleClusters;
  freeze: IdleClusters;
}

/** One runtime operation and the phases recorded around it. */
interface Step {
  /** Recorded before the operation (none: the phase stays as it is). */
  during?: ClusterRecord["phase"];
  /** Recorded once it succeeded (none: the phase stays as it is); a function when the operation decides. */
  after?: ClusterRecord["phase"] | (() => ClusterRecord["phase"] | undefined);
  run: () => Promise<unknown>;
  timings?: () => Record<string, number>;
  /** sleep: put to sleep now; resleep: a sleep found unfinished (restart); wake: a start out of sleep. */
  kind?: "sleep" | "resleep" | "wake" | "freeze" | "thaw";
}

/**
 * Makes the runtime match the store. Level-triggered: each pass reads every live cluster,
 * applies expiry (exact: a timer is set for the next expiry, no polling), and starts at
 * most one runtime operation per cluster. Killed at any point, the next process's first
 * pass picks up where this one stopped: phases record what was under way.
 *
 * Sleep when idle (with a GatewayLink): every IDLE_CHECK_MS while a cluster may fall asleep,
 * the gateway's activity says which have had no connection for their `idleMinutes`; those are
 * recorded `sleeping`, marked so (the gateway then holds a new connection and asks for a wake
 * instead of refusing it), and only then stopped. A wake request for a sleeping cluster starts
 * it (`starting`, `running`), then clears the marker (the gateway proxies the held
 * connection), then removes the request. Markers and requests are reconciled with the store
 * on every pass, so a restart at any point finishes what was under way.
 *
 * Freeze when idle (core/idle.ts isFreezable; `freezeAfterMs`): the same activity says which
 * running clusters had no connection for that long; each is recorded frozen (`frozenAt`),
 * marked like a sleeping one, and frozen by the runtime, which refuses when something of the
 * tenant's runs in it (then it is recorded thawed again and left alone for another
 * `freezeAfterMs`). A wake request for a frozen cluster thaws it, records it thawed, then clears
 * the marker. A record says frozen whenever the runtime may be, so a restart never routes to
 * a frozen cluster; a thaw is harmless on one that is not.
 */
export class LifetimeController extends EventEmitter {
  private readonly busy = new Set<string>();
  private timer: unknown;
  private readonly passes = new CoalescingTask(
    () => this.reconcile(),
    (err) => logger.error({ err }, "reconcile pass failed"),
  );

  private readonly warningMs: number;
  /** A pool's boots wait after its failures (a broken setup must not loop on provisioning), by profile label. */
  private readonly poolBackoff = new Map<string, { failures: number; retryAt: number }>();
  /** When a pool boot that waits for a user's first moments (core/warm-pool.ts poolQuietUntil) is due; 0: none waits. */
  private poolBootAt = 0;
  /** Wake requests reported by the gateway and not yet handled. */
  private readonly wakes = new Set<string>();
  /** Sleeping markers present, as far as this process knows (read once at the first pass). */
  private markers: Set<string> | undefined;
  /** Sleeping clusters whose stop this process saw finish (others are stopped again: a sleep cut short). */
  private readonly asleep = new Set<string>();
  private unsubscribeWakes: (() => void) | undefined;
  private activityFailing = false;
  /** Freezes under way: a full host's give-way waits for them rather than refusing (sleepFrozen). */
  private readonly freezing = new Map<string, Promise<void>>();
  /** Clusters whose freeze found the tenant's work running: not tried again before this moment. */
  private readonly freezeRefusedUntil = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly driver: RuntimeDriver,
    private readonly clock: Clock,
    private readonly notifications: { notifier?: Notifier; options: NotificationPolicy } = { options: {} },
    /** Clusters kept booted for creates to claim, by profile; none: pool members are left as they are. */
    private readonly pool?: WarmPools,
    /** The gateway's activity, markers and wake requests; without it no cluster is put to sleep. */
    private readonly gateway?: GatewayLink,
    /** Idle time after which a user's cluster is frozen (core/idle.ts); 0 or absent: never. */
    private readonly freezeAfterMs = 0,
  ) {
    super();
    this.warningMs = notifications.options.warningMs ?? DEFAULT_WARNING_MS;
  }

  start(): void {
    this.unsubscribeWakes = this.gateway?.wakeRequests((id) => {
      this.wakes.add(id);
      this.trigger();
    });
    this.passes.start();
  }

  /** Waits for running operations to finish; leaves clusters as they are. */
  async stop(): Promise<void> {
    this.unsubscribeWakes?.();
    this.unsubscribeWakes = undefined;
    await this.passes.stop();
    if (this.timer) this.clock.clearTimer(this.timer);
    await this.idle();
  }

  /** Resolves when no pass and no runtime operation is under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.passes.busy || this.busy.size) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Puts up to `n` frozen clusters to sleep, the longest frozen first, to make room on a full
   * host (core/idle.ts frozenToSleep), and returns once they are stopped (their memory is free
   * for what comes next). One that is thawing or under another operation is passed over.
   * Returns how many went to sleep.
   */
  async sleepFrozen(n: number, except?: string): Promise<number> {
    // A freeze under way is recorded already: let it land (or be called off), and its operation end, first.
    const landing = [...this.freezing.keys()].filter((id) => id !== except);
    for (const until = Date.now() + 30_000; landing.some((id) => this.busy.has(id)) && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 10));
    const frozen = (await this.store.clusters.all())
      .filter(
        (r) =>
          r.desired === "running" &&
          r.phase === "running" &&
          r.frozenAt !== null &&
          r.id !== except &&
          !this.busy.has(r.id) &&
          !this.wakes.has(r.id),
      )
      .sort((a, b) => a.frozenAt! - b.frozenAt!);
    let slept = 0;
    for (const r of frozen.slice(0, n)) {
      this.busy.add(r.id);
      try {
        await this.setPhase(r.id, "sleeping");
        // As a sleep cut short is finished: the marker is there already, and the stop thaws first.
        await this.sleepStep(r, "resleep").run();
        this.asleep.add(r.id);
        slept++;
        logger.info({ clusterId: r.id }, "frozen cluster put to sleep: the host is full");
        this.emit("slept", r);
      } catch (err) {
        logger.warn({ clusterId: r.id, err: String(err) }, "could not put a frozen cluster to sleep");
      } finally {
        this.busy.delete(r.id);
      }
    }
    if (slept) this.trigger();
    return slept;
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
      await this.nextChange(id);
    }
  }

  /**
   * Resolves at the cluster's next change, or after maxMs: the caller re-reads the store
   * either way, in case that change was emitted between its read and this listener.
   */
  nextChange(id: string, maxMs = 500): Promise<void> {
    return new Promise<void>((resolve) => {
      const event = `changed:${id}`;
      const done = () => {
        this.clock.clearTimer(t);
        this.off(event, done);
        resolve();
      };
      const t = this.clock.setTimer(done, maxMs);
      this.on(event, done);
    });
  }

  private async reconcile(): Promise<void> {
    const now = this.clock.now();
    const live = (await this.store.clusters.all()).filter((r) => r.phase !== "terminated");
    await this.reconcileGateway(live);
    const idle = await this.idleClusters(live, now);
    for (const [id, until] of this.freezeRefusedUntil) if (until <= now) this.freezeRefusedUntil.delete(id);
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
      if (!this.busy.has(record.id)) this.act(record, idle);
    }
    await this.keepPoolLevel(live, now);
    this.scheduleExpiry(live, now);
  }

  /**
   * Keeps every pool at its count within the host's capacity (core/warm-pool.ts poolsPlan):
   * retires members of removed profiles, failed and surplus ones, and those the host has no
   * room for; boots one member at a time, never into the host's last place.
   */
  private async keepPoolLevel(live: ClusterRecord[], now: number): Promise<void> {
    if (!this.pool) return;
    const capacity = this.pool.hostCapacity ?? Number.POSITIVE_INFINITY;
    const plan = poolsPlan(live, this.pool.profiles, sameRelease, capacity, (p) => this.poolMayBoot(p, now));
    let changed = false;
    for (const { record: r, why } of plan.retire) {
      try {
        await this.store.clusters.update(
          r.id,
          { desired: "terminated", generation: r.generation + 1 },
          // A create may have claimed it since this pass read the store: then it is a user's, and stays.
          { now, conflict: (current) => (current.pooled && current.desired === "running" ? undefined : "claimed") },
        );
        changed = true;
        logger.info({ clusterId: r.id, profile: profileLabel(r.spec), why }, "warm-pool cluster retired");
      } catch (err) {
        if (!(err instanceof TempkubeError && err.type === "conflict")) throw err;
      }
    }
    // Booting competes for the same cores as a user's create or start: the pool waits its turn.
    const userWaiting = live.some((r) => !r.pooled && ["pending", "provisioning", "starting"].includes(r.phase));
    // Nor while a user's cluster has just become theirs (a claim, a start, a thaw): a pass is scheduled for then.
    const quietUntil = plan.boot && !userWaiting ? poolQuietUntil(live) : 0;
    this.poolBootAt = quietUntil > now ? quietUntil : 0;
    if (plan.boot && !userWaiting && quietUntil <= now) {
      try {
        // Checked again in the insert's transaction: a user's create may have taken the room since.
        await this.store.clusters.insert(newPooledRecord(plan.boot.shape, now), (counts) =>
          poolBootRefusal(counts, capacity),
        );
        changed = true;
      } catch (err) {
        if (!(err instanceof TempkubeError && err.type === "capacity")) throw err;
      }
    }
    if (changed) this.trigger();
  }

  private poolMayBoot(p: PoolProfile, now: number): boolean {
    return now >= (this.poolBackoff.get(p.label)?.retryAt ?? 0);
  }

  private scheduleExpiry(records: ClusterRecord[], now: number): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    let next = nextWakeUp(records, now, this.warningMs);
    for (const { retryAt } of this.poolBackoff.values())
      if (retryAt > now && (next === undefined || retryAt < next)) next = retryAt;
    if (this.poolBootAt > now && (next === undefined || this.poolBootAt < next)) next = this.poolBootAt;
    // Idleness is not known ahead (a connection may come any moment): looked at again soon.
    const idleCheckAt = now + IDLE_CHECK_MS;
    const mayIdle = (r: ClusterRecord) => mayFallAsleep(r) || (this.freezeAfterMs > 0 && mayFreeze(r));
    if (this.gateway && records.some(mayIdle) && (next === undefined || idleCheckAt < next)) next = idleCheckAt;
    // The pass took time since `now` was read: the delay counts from the clock as it is now.
    if (next !== undefined) this.timer = this.clock.setTimer(() => this.trigger(), next - this.clock.now());
  }

  /** Starts the one operation that brings the runtime closer to the desired state, if any. */
  private act(r: ClusterRecord, idle: Idleness): void {
    const step = this.nextStep(r, idle);
    if (!step) return;
    this.busy.add(r.id);
    void (async () => {
      try {
        if (step.during) await this.setPhase(r.id, step.during);
        await step.run();
        const after = typeof step.after === "function" ? step.after() : step.after;
        const done = after
          ? await this.setPhase(r.id, after, {
              lastError: null,
              ...(step.timings ? { timings: step.timings() } : {}),
            })
          : undefined;
        if (step.during === "provisioning" && r.pooled) this.poolBackoff.delete(profileLabel(r.spec));
        if (step.during === "provisioning" && !r.pooled) this.emit("ready", done);
        if (step.kind === "resleep" || (step.kind === "sleep" && !done)) this.asleep.add(r.id);
        if (step.kind === "sleep" && !done) {
          logger.info({ clusterId: r.id }, "cluster idle: asleep");
          this.emit("slept", r);
        }
        if (step.kind === "sleep" && done) logger.info({ clusterId: r.id }, "sleep called off: a connection came");
        // Only now that it runs may the gateway proxy to it (and the held connection go through).
        if (done && done.phase !== "sleeping") {
          this.asleep.delete(r.id);
          await this.leaveSleep(r.id);
        }
        if (step.kind === "wake") {
          logger.info({ clusterId: r.id }, "cluster woke");
          this.emit("woke", done);
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        logger.warn({ clusterId: r.id, err: message }, "runtime operation failed");
        if (r.pooled && step.during === "provisioning") {
          // Only that profile waits: a version that fails to boot must not keep the other pools empty.
          const label = profileLabel(r.spec);
          const failures = (this.poolBackoff.get(label)?.failures ?? 0) + 1;
          const retryAt = this.clock.now() + Math.min(30 * 60_000, 30_000 * 2 ** (failures - 1));
          this.poolBackoff.set(label, { failures, retryAt });
        }
        const failed = await this.setPhase(r.id, "failed", { lastError: message });
        this.asleep.delete(r.id);
        // The gateway then refuses connections for it rather than holding them for a wake that will not come.
        await this.leaveSleep(r.id);
        if (step.kind === "wake") this.emit("woke", failed);
      } finally {
        this.busy.delete(r.id);
        this.trigger();
      }
    })();
  }

  private nextStep(r: ClusterRecord, idle: Idleness): Step | undefined {
    if (r.phase === "failed" && r.desired !== "terminated") return undefined;
    let timings: Record<string, number> | undefined;
    switch (r.desired) {
      case "running":
        if (r.phase === "running") {
          // A sleep of a frozen cluster thaws it first (the runtime's stop does).
          if (idle.sleep.has(r.id)) return this.sleepStep(r, "sleep", idle.sleep.get(r.id));
          if (r.frozenAt !== null) return this.wakes.has(r.id) ? this.thawStep(r) : undefined;
          return idle.freeze.has(r.id) ? this.freezeStep(r, idle.freeze.get(r.id)) : undefined;
        }
        if (r.phase === "sleeping") {
          if (this.wakes.has(r.id))
            return { during: "starting", after: "running", kind: "wake", run: () => this.wake(r.id) };
          return this.asleep.has(r.id) ? undefined : this.sleepStep(r, "resleep");
        }
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
        return {
          during: "starting",
          after: "running",
          // Out of sleep (a start of a sleeping cluster, or a wake cut short by a restart): still a wake.
          ...(r.sleptAt !== null ? { kind: "wake" as const } : {}),
          run: () => (r.sleptAt !== null ? this.wake(r.id) : this.driver.start(r.id)),
        };
      case "stopped":
        if (r.phase === "stopped") return undefined;
        if (r.phase === "pending") return { during: "stopped", after: "stopped", run: async () => undefined };
        // A sleep this process finished left nothing to stop; one cut short may have.
        if (r.phase === "sleeping" && this.asleep.has(r.id))
          return { during: "stopping", after: "stopped", run: async () => undefined };
        return { during: "stopping", after: "stopped", run: () => this.driver.stop(r.id) };
      case "terminated":
        return { during: "terminating", after: "terminated", run: () => this.driver.destroy(r.id) };
    }
  }

  /**
   * Sleep: `sleeping` is recorded (by the step's `during`), then the marker written, then the
   * cluster stopped: a connection that arrives while it stops is held and a wake asked for,
   * never refused. One that came between the look at the activity and the marker went
   * straight to the cluster: the activity is looked at once more, and if it changed the sleep
   * is called off (running again, marker cleared) rather than cutting that connection.
   * A resleep (a sleep cut short by a restart) writes the marker and stops again.
   */
  private sleepStep(r: ClusterRecord, kind: "sleep" | "resleep", seen?: ClusterActivity): Step {
    let inUse = false;
    return {
      ...(kind === "sleep" ? { during: "sleeping" as const } : {}),
      after: () => (inUse ? "running" : undefined),
      kind,
      run: async () => {
        await this.markSleeping(r.id);
        if (kind === "sleep" && (await this.usedSince(r.id, seen))) {
          inUse = true;
          return;
        }
        await this.driver.stop(r.id);
      },
    };
  }

  /**
   * A wake is not refused for a full host (core/quota.ts RunningCounts), but frozen clusters
   * give it their place: as many go to sleep as the host is over.
   */
  private async wake(id: string): Promise<void> {
    const capacity = this.pool?.hostCapacity;
    if (capacity !== undefined) {
      const { users, frozen } = hostLoad(await this.store.clusters.all());
      // This wake is already counted (phase starting): the host is over when more than its capacity run.
      const toSleep = frozenToSleep({ total: users - 1, frozen }, capacity);
      if (toSleep) await this.sleepFrozen(toSleep, id);
    }
    await this.driver.start(id);
  }

  /**
   * Freeze: recorded frozen first, then marked (the gateway holds new connections and asks for a
   * wake), then frozen by the runtime. A connection that came in between, or the tenant's work
   * running in it, calls it off: recorded thawed, marker cleared.
   */
  private freezeStep(r: ClusterRecord, seen: ClusterActivity | undefined): Step {
    return {
      kind: "freeze",
      run: () => {
        const done = this.freeze(r, seen).finally(() => this.freezing.delete(r.id));
        this.freezing.set(r.id, done);
        return done;
      },
    };
  }

  private async freeze(r: ClusterRecord, seen: ClusterActivity | undefined): Promise<void> {
    await this.setFrozenAt(r.id, this.clock.now());
    let outcome: Awaited<ReturnType<RuntimeDriver["freeze"]>> | undefined;
    try {
      await this.markSleeping(r.id);
      if (await this.usedSince(r.id, seen)) outcome = { frozen: false, reason: "a connection came" };
      else outcome = await this.driver.freeze(r.id);
    } catch (err) {
      outcome = { frozen: false, reason: `the freeze failed: ${err instanceof Error ? err.message : String(err)}` };
      logger.warn({ clusterId: r.id, err: outcome.reason }, "could not freeze an idle cluster");
    }
    if (outcome.frozen) {
      logger.info({ clusterId: r.id }, "cluster idle: frozen");
      this.emit("froze", r);
      return;
    }
    // Looked at again only after another full idle time: a running workload does not stop by itself soon.
    this.freezeRefusedUntil.set(r.id, this.clock.now() + this.freezeAfterMs);
    logger.debug({ clusterId: r.id, reason: outcome.reason }, "idle cluster not frozen");
    await this.setFrozenAt(r.id, null);
    await this.leaveSleep(r.id);
  }

  /** Thaw (a wake request for a frozen cluster): thawed, recorded so, then the held connections let through. */
  private thawStep(r: ClusterRecord): Step {
    return {
      kind: "thaw",
      run: async () => {
        const started = this.clock.now();
        await this.driver.thaw(r.id);
        // A connection is what asked for it: idle time (to freeze or sleep) counts from now.
        await this.setFrozenAt(r.id, null, { runningSince: this.clock.now() });
        await this.leaveSleep(r.id);
        logger.info({ clusterId: r.id, ms: this.clock.now() - started }, "cluster thawed");
        this.emit("thawed", r);
      },
    };
  }

  private async setFrozenAt(id: string, frozenAt: number | null, extra: Partial<ClusterRecord> = {}): Promise<void> {
    const r = await this.store.clusters.update(id, { frozenAt, ...extra }, { now: this.clock.now() });
    this.emit(`changed:${id}`, r);
  }

  /** Whether the gateway saw a connection for the cluster since `seen` (no answer now: none seen). */
  private async usedSince(id: string, seen: ClusterActivity | undefined): Promise<boolean> {
    const now = (await this.gateway?.activity().catch(() => undefined))?.clusters[id];
    return !!now && (now.open > 0 || now.lastActiveAt !== seen?.lastActiveAt);
  }

  private async markSleeping(id: string): Promise<void> {
    if (!this.gateway || this.markers?.has(id)) return;
    await this.gateway.markSleeping(id);
    this.markers?.add(id);
  }

  /** After a cluster left sleep (woke, failed, stopped, went): its marker cleared, then its wake request removed. */
  private async leaveSleep(id: string): Promise<void> {
    if (!this.gateway) return;
    try {
      if (this.markers?.has(id)) {
        await this.gateway.clearSleeping(id);
        this.markers.delete(id);
      }
      if (this.wakes.has(id)) {
        await this.gateway.wakeHandled(id);
        this.wakes.delete(id);
      }
    } catch (err) {
      // The next pass's reconcileGateway tries again.
      logger.warn({ clusterId: id, err: String(err) }, "could not clear a sleeping marker or wake request");
    }
  }

  /**
   * Level-triggered bookkeeping of the gateway's files: a marker stays only on a cluster that
   * sleeps or is waking; a wake request stays only while its cluster sleeps or wakes. A cluster
   * under an operation is left to that operation, which does the same when it ends.
   */
  private async reconcileGateway(live: ClusterRecord[]): Promise<void> {
    if (!this.gateway) return;
    const byId = new Map(live.map((r) => [r.id, r]));
    const sleepingOrWaking = (id: string) => {
      const r = byId.get(id);
      return (
        !!r &&
        r.desired === "running" &&
        (r.phase === "sleeping" ||
          (r.phase === "starting" && r.sleptAt !== null) ||
          (r.phase === "running" && r.frozenAt !== null))
      );
    };
    try {
      this.markers ??= new Set(await this.gateway.sleepingMarkers());
      for (const id of [...this.markers, ...this.wakes])
        if (!this.busy.has(id) && !sleepingOrWaking(id)) await this.leaveSleep(id);
    } catch (err) {
      logger.warn({ err: String(err) }, "could not read the gateway's sleeping markers; trying again at the next pass");
    }
  }

  /** The clusters to put to sleep or freeze now; none when no gateway answers (idleness is then unknown). */
  private async idleClusters(live: ClusterRecord[], now: number): Promise<Idleness> {
    const free = (r: ClusterRecord) => !this.busy.has(r.id) && !this.wakes.has(r.id);
    const sleepers = live.filter((r) => mayFallAsleep(r) && free(r));
    const freezable = live.filter(
      (r) => this.freezeAfterMs > 0 && mayFreeze(r) && free(r) && !this.freezeRefusedUntil.has(r.id),
    );
    const none: Idleness = { sleep: new Map(), freeze: new Map() };
    if (!this.gateway || !this.markers || (!sleepers.length && !freezable.length)) return none;
    const activity = await this.readActivity(this.gateway);
    if (!activity) return none;
    const seen = (rs: ClusterRecord[]): IdleClusters => new Map(rs.map((r) => [r.id, activity.clusters[r.id]]));
    const sleep = sleepers.filter((r) => isIdle(r, activity, now));
    const freeze = freezable.filter((r) => !sleep.includes(r) && isFreezable(r, activity, now, this.freezeAfterMs));
    return { sleep: seen(sleep), freeze: seen(freeze) };
  }

  private async readActivity(gateway: GatewayLink): Promise<GatewayActivity | undefined> {
    return gateway.activity().then(
      (a) => {
        this.activityFailing = false;
        return a;
      },
      (err: unknown) => {
        // Said once per outage, not at every check.
        if (!this.activityFailing) logger.warn({ err: String(err) }, "gateway activity unavailable; nothing sleeps");
        this.activityFailing = true;
        return undefined;
      },
    );
  }

  private async setPhase(
    id: string,
    phase: ClusterRecord["phase"],
    extra: Partial<ClusterRecord> = {},
  ): Promise<ClusterRecord> {
    const now = this.clock.now();
    const r = await this.store.clusters.update(
      id,
      { phase, ...sleepFieldsFor(phase, now), ...extra },
      { now, notify: onPhaseChange(now, this.notifications.options) },
    );
    this.notifications.notifier?.trigger();
    this.emit(`changed:${id}`, r);
    this.emit("phase", r);
    return r;
  }
}
