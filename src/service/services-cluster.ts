import type { ClusterRecord, SystemPurpose } from "../core/cluster-record.js";
import type { Clock } from "../core/clock.js";
import type { PoolShape } from "../core/pool-profiles.js";
import type { LifetimeController } from "../controller/lifetime-controller.js";
import type { RuntimeDriver } from "../runtime/driver.js";
import type { Store } from "../store/store.js";
import { TempkubeError } from "../util/errors.js";
import { logger } from "../util/log.js";
import type { ClusterService } from "./cluster-service.js";

/** What the services' controller and API need of the services cluster. */
export interface ServicesClusterAccess {
  clusterId: string;
  /** system:masters: the Ephemeron controller and the services API act with it. */
  adminKubeconfig: string;
}

const PURPOSE: SystemPurpose = "services";
/** How long `ensure` waits for the cluster to boot (a cold create takes seconds; a broken host fails sooner). */
const READY_TIMEOUT_MS = 5 * 60_000;
/** After a failure the cluster is made or started again after this, doubling to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 30_000;
const MAX_RETRY_MS = 10 * 60_000;

/**
 * The cluster the server keeps for ephemeral services (issue 14, deliverable 3): made on first
 * use (`ensure`; callers at the same time share one create), found again in the store after a
 * restart, with no owner, lifetime or sleep (core/cluster-record.ts SystemPurpose; the lifetime
 * controller leaves such clusters running), and made or started again when it failed. It holds
 * a place on the host like a user's cluster and is in no tenant's list or quota.
 */
export class ServicesCluster {
  private pending: Promise<ServicesClusterAccess> | undefined;
  private failures = 0;
  /** After a failure, `ensure` answers at once with it until then (no boot per request on a broken host). */
  private retryAt = 0;
  private lastFailure: string | undefined;
  private retryTimer: unknown;
  private started = false;
  private knownId: string | undefined;
  private readonly onPhase = (r: ClusterRecord) => this.observe(r);

  constructor(
    private readonly store: Store,
    private readonly clusters: ClusterService,
    private readonly controller: LifetimeController,
    private readonly driver: RuntimeDriver,
    private readonly clock: Clock,
    /** Its version, size and workers (`--services-cluster`); never privileged: it runs API callers' images. */
    readonly shape: PoolShape,
    private readonly readyTimeoutMs = READY_TIMEOUT_MS,
  ) {
    if (shape.privileged)
      throw new TempkubeError(
        "invalid-input",
        "the services cluster runs API callers' images: it may not be privileged (pods would be root on the host)",
      );
  }

  /**
   * The services cluster, running: made now if there is none (created on first use), started
   * again if it failed or stopped, waited for while it boots. Concurrent callers share one attempt.
   */
  ensure(): Promise<ServicesClusterAccess> {
    this.pending ??= this.bringUp().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /**
   * Its id as far as this server knows (undefined: none made yet, or not looked for: before
   * `start`), without asking the store: what the services' controllers ask at every turn.
   */
  clusterId(): string | undefined {
    return this.knownId;
  }

  /** The services cluster as the store has it, without making one (undefined: not made yet). */
  current(): Promise<ClusterRecord | undefined> {
    return this.store.clusters.system(PURPOSE);
  }

  /**
   * At server start: re-adopts the cluster an earlier server made (none: it is made on first use),
   * starting it when it failed or its processes are gone (a host reboot), and from then on makes
   * or starts it again after a failure (backing off), without waiting for a request.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.controller.on("phase", this.onPhase);
    const r = await this.current();
    if (!r) return;
    this.knownId = r.id;
    logger.info({ clusterId: r.id, phase: r.phase }, "services cluster found in the store: re-adopted");
    if (r.desired === "running" && r.phase === "running") await this.checkRuntime(r);
    else if (r.phase === "failed" || r.desired !== "running") this.retryIn(0);
  }

  stop(): void {
    this.started = false;
    this.controller.off("phase", this.onPhase);
    if (this.retryTimer) this.clock.clearTimer(this.retryTimer);
    this.retryTimer = undefined;
  }

  private async bringUp(): Promise<ServicesClusterAccess> {
    const now = this.clock.now();
    if (now < this.retryAt && this.lastFailure)
      throw new TempkubeError(
        "runtime",
        `the services cluster failed (${this.lastFailure}); it is tried again at ${new Date(this.retryAt).toISOString()}`,
      );
    const { record, made } = await this.clusters.ensureSystemCluster(PURPOSE, this.shape);
    this.knownId = record.id;
    if (made) logger.info({ clusterId: record.id, pooled: record.phase === "running" }, "services cluster created");
    const wanted = await this.revive(record);
    const settled =
      wanted.phase === "running" ? wanted : await this.controller.waitSettled(wanted.id, this.readyTimeoutMs);
    if (!settled || settled.desired === "terminated")
      throw new TempkubeError("runtime", `the services cluster ${wanted.id} went away while it was being made`);
    if (settled.phase === "failed") {
      this.failed(settled.lastError ?? "unknown error");
      throw new TempkubeError(
        "runtime",
        `the services cluster ${settled.id} failed: ${settled.lastError ?? "unknown error"}; it is tried again at ${new Date(this.retryAt).toISOString()}`,
      );
    }
    if (settled.phase !== "running")
      throw new TempkubeError(
        "timeout",
        `the services cluster ${settled.id} is not running after ${Math.round(this.readyTimeoutMs / 1000)} s (${settled.phase}); try again shortly`,
      );
    this.failures = 0;
    this.lastFailure = undefined;
    this.retryAt = 0;
    const { adminKubeconfig } = await this.driver.credentials(settled.id);
    return { clusterId: settled.id, adminKubeconfig };
  }

  /**
   * Wanted running again when it is not: a failed cluster that never ran is provisioned afresh
   * (recorded `provisioning`: the controller clears what a cut-short provision left, then
   * provisions: lifetime-controller.ts nextStep), one that ran is started (its state kept), as
   * ClusterService.start does for a user's failed cluster.
   */
  private async revive(r: ClusterRecord): Promise<ClusterRecord> {
    const changes: Partial<ClusterRecord> | undefined =
      r.phase === "failed"
        ? { desired: "running", phase: r.runningSince === null ? "provisioning" : "stopped" }
        : r.desired !== "running"
          ? { desired: "running", generation: r.generation + 1 }
          : undefined;
    if (!changes) return r;
    logger.info({ clusterId: r.id, phase: r.phase, lastError: r.lastError }, "services cluster: starting it again");
    try {
      const next = await this.store.clusters.update(r.id, changes, {
        now: this.clock.now(),
        // The controller (or another server) may have moved it on since it was read: then as it is.
        conflict: (current) =>
          current.phase === r.phase && current.desired === r.desired ? undefined : "changed meanwhile",
      });
      this.controller.trigger();
      return next;
    } catch (err) {
      if (!(err instanceof TempkubeError && err.type === "conflict")) throw err;
      return (await this.store.clusters.get(r.id)) ?? r;
    }
  }

  /**
   * A cluster the store says runs but whose processes are gone (the host rebooted, someone
   * stopped it with `tempkube runtime stop`) is started.
   */
  private async checkRuntime(r: ClusterRecord): Promise<void> {
    const status = await this.driver.status(r.id).catch(() => undefined);
    if (!status) return;
    const down =
      status.phase === "stopped" ||
      status.phase === "failed" ||
      (status.components.length > 0 && status.components.every((c) => !c.running));
    const now = this.clock.now();
    if (status.phase === "absent") {
      // Not let go on this evidence alone: a runtime that cannot see it (another replica's host, a
      // data dir not mounted yet) is not proof it is gone, and letting go loses every service in it.
      logger.warn({ clusterId: r.id }, "the runtime does not know the services cluster; left as the store has it");
      return;
    }
    if (!down) return;
    logger.warn({ clusterId: r.id, runtime: status.phase }, "services cluster is not running: starting it");
    await this.store.clusters.update(r.id, { phase: "stopped" }, { now });
    this.controller.trigger();
  }

  /** Every change of phase: a failure of the services cluster is answered by a retry after the backoff. */
  private observe(r: ClusterRecord): void {
    if (r.system !== PURPOSE) return;
    this.knownId = r.desired === "terminated" ? undefined : r.id;
    if (r.phase === "running") {
      this.failures = 0;
      this.lastFailure = undefined;
      this.retryAt = 0;
    } else if (r.phase === "failed" && !this.pending) {
      this.failed(r.lastError ?? "unknown error");
    }
  }

  private failed(error: string): void {
    if (this.lastFailure !== undefined && this.clock.now() < this.retryAt) return;
    this.failures++;
    this.lastFailure = error;
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.failures - 1));
    this.retryAt = this.clock.now() + delay;
    logger.warn({ error, retryInMs: delay }, "services cluster failed; it is made or started again after a pause");
    this.retryIn(delay);
  }

  private retryIn(delayMs: number): void {
    if (!this.started) return;
    if (this.retryTimer) this.clock.clearTimer(this.retryTimer);
    this.retryTimer = this.clock.setTimer(() => {
      this.retryTimer = undefined;
      if (!this.started) return;
      this.ensure().catch((err: unknown) =>
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, "services cluster retry failed"),
      );
    }, delayMs);
  }
}
