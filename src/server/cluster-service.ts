import { DEFAULT_SIZE, newClusterId, validateSpec, type ClusterSpec, type SizePreset } from "../core/cluster-spec.js";
import { conflictFor, type ClusterRecord } from "../core/cluster-record.js";
import type { Clock } from "../core/clock.js";
import type { LifetimeController } from "../controller/lifetime-controller.js";
import type { RuntimeDriver } from "../runtime/driver.js";
import { DEFAULT_KUBERNETES_MINOR, findRelease } from "../setup/catalogue.js";
import type { Store, TokenIdentity } from "../store/store.js";
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
}

export const MAX_TTL_MINUTES = 7 * 24 * 60;
/** How long a request that asked to wait (create, start, stop, delete) is held at most. */
export const WAIT_TIMEOUT_MS = 10 * 60_000;

/** The operations of the API, shared by every surface (REST today; SMEK-style and CLI ride on it). */
export class ClusterService {
  constructor(private readonly store: Store, private readonly controller: LifetimeController,
    private readonly driver: RuntimeDriver, private readonly clock: Clock) {}

  async create(who: TokenIdentity, req: CreateClusterRequest): Promise<ClusterRecord> {
    const version = req.kubernetesVersion ?? DEFAULT_KUBERNETES_MINOR;
    if (!findRelease(version)) throw new TempkubeError("invalid-input", `kubernetesVersion "${version}" is not offered`);
    const spec: ClusterSpec = {
      id: newClusterId(), kubernetesVersion: version, privileged: req.privileged ?? false,
      size: (req.size ?? DEFAULT_SIZE) as SizePreset, workers: req.workers ?? 0,
    };
    const problems = validateSpec(spec);
    if (problems.length) throw new TempkubeError("invalid-input", problems.join("; "));
    const now = this.clock.now();
    const ttlMinutes = req.ttlMinutes ?? 60;
    const record: ClusterRecord = {
      id: spec.id, owner: String(who.id), name: req.name ?? null, spec, keep: req.keep ?? false,
      notificationEmail: req.notificationEmail ?? null, desired: "running", phase: "pending",
      ttlMinutes, expiresAt: now + ttlMinutes * 60_000, createdAt: now, updatedAt: now, lastError: null, timings: {}, generation: 0,
    };
    await this.store.insertCluster(record);
    this.controller.trigger();
    return record;
  }

  /** Unknown and other tenants' clusters look the same: 404. */
  async get(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    const r = await this.store.getCluster(id);
    if (!r || (!who.admin && r.owner !== String(who.id))) throw new TempkubeError("not-found", `cluster ${id} not found`);
    return r;
  }

  list(who: TokenIdentity): Promise<ClusterRecord[]> {
    return this.store.listClusters(who.admin ? undefined : String(who.id));
  }

  async kubeconfig(who: TokenIdentity, id: string): Promise<string> {
    const r = await this.get(who, id);
    if (r.phase !== "running" && r.phase !== "stopped" && r.phase !== "starting" && r.phase !== "stopping") {
      throw new TempkubeError("conflict", `cluster ${id} has no kubeconfig while ${r.phase}`);
    }
    return (await this.driver.credentials(id)).tenantKubeconfig;
  }

  async stop(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    return this.change(who, id, "stop", { desired: "stopped" });
  }

  async start(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    const r = await this.get(who, id);
    const now = this.clock.now();
    // An expired kept cluster comes back with a fresh lifetime of its TTL.
    const expiresAt = r.expiresAt <= now ? now + r.ttlMinutes * 60_000 : r.expiresAt;
    return this.change(who, id, "start", { desired: "running", expiresAt, ...(r.phase === "failed" ? { phase: "stopped" as const } : {}) });
  }

  async extend(who: TokenIdentity, id: string, ttlMinutes: number): Promise<ClusterRecord> {
    return this.change(who, id, "extend", { ttlMinutes, expiresAt: this.clock.now() + ttlMinutes * 60_000 });
  }

  async delete(who: TokenIdentity, id: string): Promise<ClusterRecord> {
    return this.change(who, id, "delete", { desired: "terminated" });
  }

  private async change(who: TokenIdentity, id: string, op: Parameters<typeof conflictFor>[0], changes: Partial<ClusterRecord>): Promise<ClusterRecord> {
    const r = await this.get(who, id);
    const conflict = conflictFor(op, r);
    if (conflict) throw new TempkubeError("conflict", conflict);
    const generation = changes.desired && changes.desired !== r.desired ? r.generation + 1 : r.generation;
    const updated = await this.store.updateCluster(id, { ...changes, generation }, this.clock.now());
    this.controller.trigger();
    return updated;
  }

  waitSettled(id: string, timeoutMs = WAIT_TIMEOUT_MS): Promise<ClusterRecord | undefined> {
    return this.controller.waitSettled(id, timeoutMs);
  }
}
