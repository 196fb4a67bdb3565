import {
  DEFAULT_SIZE,
  DEFAULT_TTL_MINUTES,
  newClusterId,
  validateSpec,
  type ClusterSpec,
  type SizePreset,
} from "../core/cluster-spec.js";
import { conflictFor, isSettled, type ClusterRecord, type SystemPurpose } from "../core/cluster-record.js";
import type { Clock } from "../core/clock.js";
import { capacityRefusal, NO_LIMITS, policyRefusal, type TokenIdentity } from "../core/quota.js";
import { claimPooled, giveWayOrder, poolServes, profileOf, roomToFree } from "../core/warm-pool.js";
import type { PoolProfile, PoolShape } from "../core/pool-profiles.js";
import { frozenToSleep, MAX_IDLE_MINUTES } from "../core/idle.js";
import type { LifetimeController } from "../controller/lifetime-controller.js";
import { gatewayKubeconfig, gatewayServer, type GatewayAccess } from "../gateway/gateway-kubeconfig.js";
import { notificationsFor, type NotificationPolicy } from "../core/notifications.js";
import type { RuntimeDriver } from "../runtime/driver.js";
import { DEFAULT_KUBERNETES_MINOR, findRelease } from "../setup/catalogue.js";
import type { Admission, Store } from "../store/store.js";
import { TempkubeError } from "../util/errors.js";

export interface CreateClusterRequest {
  kubernetesVersion?: string;
  ttlMinutes?: number;
  keep?: boolean;
  notificationEmail?: string;
  privileged?: boolean;
  size?: string;
  workers?: number;
  name?: string;
  labels?: Record<string, string>;
  /** Minutes without a connection through the gateway before the cluster sleeps; 0: never; absent: the server's default. */
  idleMinutes?: number;
}

export interface ServiceLimits {
  /** Clusters running (or on their way) at once on this host, users' and the warm pools'. */
  hostCapacity: number;
  notifications: NotificationPolicy;
  /** `idleMinutes` of a create that names none (`tempkube server --idle-minutes`); 0: never sleep. */
  defaultIdleMinutes?: number;
}

/** Why an idle time is not acceptable, naming the field as the caller knows it; undefined when it is. */
export function idleMinutesProblem(minutes: number, field: string): string | undefined {
  if (!Number.isInteger(minutes) || minutes < 0 || minutes > MAX_IDLE_MINUTES)
    return `${field} must be a whole number of minutes from 0 (never sleep) to ${MAX_IDLE_MINUTES}, not ${minutes}`;
  return undefined;
}

export interface ClusterServiceOptions {
  /** When set, every kubeconfig and server handed out leads through the gateway (usable from other machines). */
  gateway?: GatewayAccess;
  /** The warm pools' profiles (what the controller keeps), and who is told of each create's hit or miss. */
  warmPool?: WarmPoolObserver;
}

export interface WarmPoolObserver {
  profiles: readonly PoolProfile[];
  /**
   * A create was served from its profile's pool (hit) or not (miss: none of that profile ready);
   * profile "none" when no pool holds that shape.
   */
  onCreate?(profile: string, hit: boolean): void;
}

/** How often a create frees pool room and tries again before it takes the refusal (concurrent creates took the room). */
const GIVE_WAY_ATTEMPTS = 3;

const sameRelease = (a: string, b: string) => findRelease(a)?.version === findRelease(b)?.version;

/** Who the server's own clusters are admitted as: no quota of any token, only the host's capacity. */
const SERVER_ITSELF: TokenIdentity = { id: 0, name: "tempkube server", admin: true, limits: NO_LIMITS };

/** How long a request that asked to wait (create, start, stop, delete) is held at most. */
export const WAIT_TIMEOUT_MS = 10 * 60_000;

/**
 * The application layer: the operations on clusters, shared by every surface (REST, the
 * SMEK-style routes, and through them the CLI and the bench), with no HTTP in sight.
 */
export class ClusterService {
  constructor(
    private readonly store: Store,
    private readonly controller: LifetimeController,
    private readonly driver: RuntimeDriver,
    private readonly clock: Clock,
    private readonly limits: ServiceLimits = { hostCapacity: Number.POSITIVE_INFINITY, notifications: {} },
    private readonly options: ClusterServiceOptions = {},
  ) {}

  /**
   * Admits (token policy, quota, host capacity: nothing is made when refused), then claims
   * a warm-pool cluster of the same shape when one is ready, else records a new one for the
   * controller to provision; when only pool clusters stand in its way on a full host, they
   * give way (one is retired) and the create proceeds.
   */
  async create(who: TokenIdentity, req: CreateClusterRequest): Promise<ClusterRecord> {
    const version = req.kubernetesVersion ?? DEFAULT_KUBERNETES_MINOR;
    if (!findRelease(version))
      throw new TempkubeError("invalid-input", `kubernetesVersion "${version}" is not offered`);
    // In the request path, before anything is recorded: a version that is not installed is a
    // 409 naming the command that installs it, not a cluster that fails once the controller
    // gets to it (README, "Versions on demand": why not an install in the background).
    this.driver.checkVersion(version);
    const spec: ClusterSpec = {
      id: newClusterId(),
      kubernetesVersion: version,
      privileged: req.privileged ?? false,
      size: (req.size ?? DEFAULT_SIZE) as SizePreset,
      workers: req.workers ?? 0,
    };
    const problems = validateSpec(spec);
    if (problems.length) throw new TempkubeError("invalid-input", problems.join("; "));
    const ttlMinutes = req.ttlMinutes ?? DEFAULT_TTL_MINUTES;
    const idleMinutes = req.idleMinutes ?? this.limits.defaultIdleMinutes ?? 0;
    const idleProblem = idleMinutesProblem(idleMinutes, "idleMinutes");
    if (idleProblem) throw new TempkubeError("invalid-input", idleProblem);
    const refused = policyRefusal(who, spec, ttlMinutes);
    if (refused) throw new TempkubeError(refused.type, refused.message);
    const now = this.clock.now();
    const mine = {
      owner: String(who.id),
      name: req.name ?? null,
      keep: req.keep ?? false,
      notificationEmail: req.notificationEmail ?? null,
      ttlMinutes,
      labels: req.labels ?? {},
      idleMinutes,
    };
    const claimed = await this.store.clusters.claimPooled(
      (r) => poolServes(r.spec, spec, sameRelease),
      (r) => claimPooled(r, mine, now),
      this.admission(who),
      // To its new owner a claimed pool cluster has just become ready.
      (next) => notificationsFor("ready", next, now, this.limits.notifications),
    );
    // Told once the create is made (a refused one is neither a hit nor a miss).
    const pool = this.options.warmPool;
    const told = (hit: boolean) => pool?.onCreate?.(profileOf(spec, pool.profiles, sameRelease)?.label ?? "none", hit);
    if (claimed) {
      told(true);
      this.controller.trigger();
      return claimed;
    }
    const record: ClusterRecord = {
      id: spec.id,
      spec,
      desired: "running",
      phase: "pending",
      expiresAt: now + ttlMinutes * 60_000,
      createdAt: now,
      updatedAt: now,
      lastError: null,
      timings: {},
      generation: 0,
      pooled: false,
      runningSince: null,
      sleptAt: null,
      frozenAt: null,
      ...mine,
    };
    await this.givingWay(who, (admit) => this.store.clusters.insert(record, admit));
    told(false);
    this.controller.trigger();
    return record;
  }

  /**
   * The server's own cluster for `purpose` of this shape: the one the store has (`made` false),
   * or a new one (store/clusters.ts insertSystem: one per purpose, however many callers or
   * servers ask at once). A ready pool cluster of the shape becomes it when there is one, else it
   * is recorded for the controller to provision. It takes a place on the host like a user's
   * cluster (pool members give way to it; a full host is a `capacity` refusal), in no token's
   * quota; it has no owner, lifetime or idle time (core/cluster-record.ts SystemPurpose).
   */
  async ensureSystemCluster(
    purpose: SystemPurpose,
    shape: PoolShape,
  ): Promise<{ record: ClusterRecord; made: boolean }> {
    const existing = await this.store.clusters.system(purpose);
    if (existing) return { record: existing, made: false };
    this.driver.checkVersion(shape.kubernetesVersion);
    const spec: ClusterSpec = { id: newClusterId(), ...shape };
    const problems = validateSpec(spec);
    if (problems.length) throw new TempkubeError("invalid-input", `${purpose} cluster: ${problems.join("; ")}`);
    const now = this.clock.now();
    const theirs = {
      owner: "",
      name: purpose,
      keep: false,
      notificationEmail: null,
      ttlMinutes: 0,
      labels: {},
      idleMinutes: 0,
      system: purpose,
    };
    const record: ClusterRecord & { system: SystemPurpose } = {
      id: spec.id,
      spec,
      desired: "running",
      phase: "pending",
      expiresAt: now,
      createdAt: now,
      updatedAt: now,
      lastError: null,
      timings: {},
      generation: 0,
      pooled: false,
      runningSince: null,
      sleptAt: null,
      frozenAt: null,
      ...theirs,
    };
    const made = await this.givingWay(SERVER_ITSELF, (admit) =>
      this.store.clusters.insertSystem(record, admit, {
        match: (r) => poolServes(r.spec, spec, sameRelease),
        claim: (r) => ({ ...claimPooled(r, theirs, now), expiresAt: now, system: purpose }),
      }),
    );
    this.controller.trigger();
    return made;
  }

  /**
   * Checked in the store's transaction that adds a running cluster: the token's quota, then
   * the host's capacity, counting users' clusters (a claim only moves a pool cluster to a user:
   * the host holds no more than before).
   */
  private admission(who: TokenIdentity): Admission {
    return (counts) => capacityRefusal(who, counts, this.limits.hostCapacity);
  }

  /**
   * Adds a running cluster (`add`, with the admission to check in its transaction) on a host
   * whose pools count against its capacity: when only pool clusters stand in the way, as many
   * as needed are retired (giveWayOrder: the cheapest to lose first) and the add is tried again.
   * The pool's controller then boots nothing while the host has no room to spare.
   */
  private async givingWay<T>(who: TokenIdentity, add: (admit: Admission) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let toFree = 0;
      let toSleep = 0;
      const admit: Admission = (counts) => {
        toFree = 0;
        toSleep = 0;
        const refused = capacityRefusal(who, counts, this.limits.hostCapacity);
        // Full with users' clusters, some of them frozen: those go to sleep for this one.
        if (refused?.type === "capacity") toSleep = frozenToSleep(counts, this.limits.hostCapacity);
        if (refused) return refused;
        toFree = roomToFree(counts, this.limits.hostCapacity);
        if (!toFree) return undefined;
        return {
          type: "capacity",
          message: `host capacity reached: ${counts.total} of ${this.limits.hostCapacity} clusters are running, and ${counts.pooled} warm-pool cluster(s) could not give way; try again shortly`,
        };
      };
      try {
        return await add(admit);
      } catch (err) {
        if ((!toFree && !toSleep) || attempt === GIVE_WAY_ATTEMPTS) throw err;
      }
      if (toFree) await this.retirePooled(toFree);
      if (toSleep) await this.controller.sleepFrozen(toSleep);
    }
  }

  /** Retires up to n pool clusters for a user's create; one claimed or retired meanwhile is passed over. */
  private async retirePooled(n: number): Promise<void> {
    const members = (await this.store.clusters.all()).filter((r) => r.pooled && r.desired === "running");
    let retired = 0;
    for (const r of giveWayOrder(members, this.options.warmPool?.profiles ?? [], sameRelease)) {
      if (retired === n) break;
      try {
        await this.store.clusters.update(
          r.id,
          { desired: "terminated", generation: r.generation + 1 },
          {
            now: this.clock.now(),
            conflict: (current) => (current.pooled && current.desired === "running" ? undefined : "claimed"),
          },
        );
        retired++;
      } catch (err) {
        if (!(err instanceof TempkubeError && err.type === "conflict")) throw err;
      }
    }
    this.controller.trigger();
  }

  /** Unknown and other tenants' clusters look the same: 404. */
  async get(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    const r = await this.store.clusters.get(id);
    if (!r || r.pooled || (!who.admin && r.owner !== String(who.id)))
      throw new TempkubeError("not-found", `cluster ${id} not found`);
    return r;
  }

  /** The caller's clusters (all for an admin), optionally only those carrying every one of `labels`. */
  async list(who: TokenIdentity, labels: Record<string, string> = {}): Promise<ClusterRecord[]> {
    const all = await this.store.clusters.list(who.admin ? undefined : String(who.id));
    return all.filter((r) => Object.entries(labels).every(([k, v]) => r.labels[k] === v));
  }

  /**
   * The kubelet release this host's nodes of a cluster of that version run, when it is not
   * the control plane's (a cgroup v1 host and a kubelet without cgroup v1; core/kubelet-policy.ts).
   */
  kubeletFor(kubernetesVersion: string): { version: string; reason: string } | undefined {
    return this.driver.kubeletFor(kubernetesVersion);
  }

  /** The apiserver's URL, once the cluster has credentials. */
  async endpoint(r: ClusterRecord): Promise<string | null> {
    if (r.phase === "pending" || r.phase === "provisioning" || r.phase === "terminated" || r.phase === "failed")
      return null;
    const server = (await this.driver.credentials(r.id).catch(() => undefined))?.server ?? null;
    return server && this.options.gateway ? gatewayServer(this.options.gateway) : server;
  }

  async kubeconfig(who: TokenIdentity, id: string): Promise<string> {
    const r = await this.get(who, id);
    // A sleeping cluster's kubeconfig works: the first connection through it wakes the cluster.
    if (!["running", "stopped", "starting", "stopping", "sleeping"].includes(r.phase)) {
      throw new TempkubeError("conflict", `cluster ${id} has no kubeconfig while ${r.phase}`);
    }
    const kubeconfig = (await this.driver.credentials(id)).tenantKubeconfig;
    return this.options.gateway ? gatewayKubeconfig(kubeconfig, id, this.options.gateway) : kubeconfig;
  }

  /**
   * Loads an image archive: into one running cluster (its owner may), or into the host's
   * registry for every cluster (admins only: every tenant's nodes may pull it).
   */
  async loadImage(who: TokenIdentity, archivePath: string, clusterId?: string): Promise<{ images: string[] }> {
    if (clusterId) {
      const r = await this.get(who, clusterId);
      if (r.phase !== "running")
        throw new TempkubeError(
          "conflict",
          `cluster ${clusterId} is ${r.phase}; images load into running clusters${r.phase === "sleeping" ? " (start wakes it)" : ""}`,
        );
    } else if (!who.admin) {
      throw new TempkubeError(
        "forbidden",
        `token "${who.name}" may load images into its own clusters only (cluster=<id>); the host registry is for admins`,
      );
    }
    return this.driver.loadImage(archivePath, clusterId);
  }

  async stop(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    return this.change(who, id, "stop", { desired: "stopped" });
  }

  async start(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    const r = await this.get(who, id);
    // Its binaries may have gone since it was made: said now, not as a failed start.
    this.driver.checkVersion(r.spec.kubernetesVersion);
    // A wake, as a connection through the gateway would make: it already holds its place in the
    // token's quota, and wakes are not admitted against host capacity (core/quota.ts RunningCounts).
    // Recorded as the wake's first phase, so the controller starts it, and waits see it under way.
    if (r.phase === "sleeping" && r.desired === "running") return this.change(who, id, "start", { phase: "starting" });
    const now = this.clock.now();
    // An expired kept cluster comes back with a fresh lifetime of its TTL.
    const expiresAt = r.expiresAt <= now ? now + r.ttlMinutes * 60_000 : r.expiresAt;
    const changes = {
      desired: "running" as const,
      expiresAt,
      ...(r.phase === "failed" ? { phase: "stopped" as const } : {}),
    };
    // A cluster still wanted running (one that failed to start or wake) already holds its place.
    if (r.desired === "running") return this.change(who, id, "start", changes);
    return this.givingWay(who, (admit) => this.change(who, id, "start", changes, admit));
  }

  async extend(who: TokenIdentity, id: string, ttlMinutes: number): Promise<ClusterRecord> {
    const r = await this.get(who, id);
    const refused = policyRefusal(who, { privileged: false, size: r.spec.size }, ttlMinutes);
    if (refused) throw new TempkubeError(refused.type, refused.message);
    return this.change(who, id, "extend", { ttlMinutes, expiresAt: this.clock.now() + ttlMinutes * 60_000 });
  }

  async delete(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    return this.change(who, id, "delete", { desired: "terminated" });
  }

  private async change(
    who: TokenIdentity,
    id: string,
    op: Parameters<typeof conflictFor>[0],
    changes: Partial<ClusterRecord>,
    admit?: Admission,
  ): Promise<ClusterRecord> {
    const r = await this.get(who, id);
    const conflict = conflictFor(op, r);
    if (conflict) throw new TempkubeError("conflict", conflict);
    const generation = changes.desired && changes.desired !== r.desired ? r.generation + 1 : r.generation;
    // Checked again in the write's transaction: the controller may have moved the cluster on since
    // the read (a wake finishing must not be followed by a second start of a running cluster).
    const updated = await this.store.clusters.update(
      id,
      { ...changes, generation },
      { now: this.clock.now(), admit, conflict: (current) => conflictFor(op, current) },
    );
    this.controller.trigger();
    return updated;
  }

  waitSettled(id: string, timeoutMs = WAIT_TIMEOUT_MS): Promise<ClusterRecord | undefined> {
    return this.controller.waitSettled(id, timeoutMs);
  }

  /**
   * Calls `onPhase` with the cluster as it is now and again at each change of phase, until it
   * is settled (the last call), the timeout passes or `signal` aborts (the client went away).
   */
  async follow(
    id: string,
    onPhase: (r: ClusterRecord) => void,
    signal?: AbortSignal,
    timeoutMs = WAIT_TIMEOUT_MS,
  ): Promise<ClusterRecord | undefined> {
    const deadline = this.clock.now() + timeoutMs;
    let last: string | undefined;
    for (;;) {
      const r = await this.store.clusters.get(id);
      if (!r) return undefined;
      if (r.phase !== last) {
        last = r.phase;
        onPhase(r);
      }
      if (isSettled(r) || this.clock.now() > deadline || signal?.aborted) return r;
      await this.controller.nextChange(id);
    }
  }
}
