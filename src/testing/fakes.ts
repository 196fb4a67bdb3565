import { NO_LIMITS, type TokenIdentity } from "../core/quota.js";
import type { Clock } from "../core/clock.js";
import type { ClusterSpec } from "../core/cluster-spec.js";
import type {
  ClusterCredentials,
  ClusterRuntimeStatus,
  FreezeOutcome,
  RuntimeDriver,
  StepTimings,
} from "../runtime/driver.js";
import type { TempkubeError } from "../util/errors.js";

/** A clock that moves only when told; timers fire in order as it passes them. */
export class FakeClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;
  constructor(private current = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  setTimer(fn: () => void, delayMs: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + delayMs, fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.current = due[1].at;
      due[1].fn();
    }
    this.current = target;
  }
}

/** A driver that records what it was asked to do; state in memory. */
export class FakeDriver implements RuntimeDriver {
  readonly calls: string[] = [];
  readonly clusters = new Map<string, "running" | "stopped">();
  async provision(spec: ClusterSpec): Promise<{ credentials: ClusterCredentials; timings: StepTimings }> {
    this.calls.push(`provision ${spec.id}`);
    this.clusters.set(spec.id, "running");
    return { credentials: await this.credentials(spec.id), timings: { total: 1 } };
  }
  async start(id: string) {
    this.calls.push(`start ${id}`);
    this.clusters.set(id, "running");
    return { timings: {} };
  }
  async stop(id: string) {
    this.calls.push(`stop ${id}`);
    this.frozen.delete(id);
    this.clusters.set(id, "stopped");
  }
  async destroy(id: string) {
    this.calls.push(`destroy ${id}`);
    this.clusters.delete(id);
    this.frozen.delete(id);
  }
  /** Frozen clusters; a test sets `busy` to what runs in a cluster to have its freezes refused. */
  readonly frozen = new Set<string>();
  readonly busy = new Map<string, string>();
  async freeze(id: string): Promise<FreezeOutcome> {
    this.calls.push(`freeze ${id}`);
    const reason = this.busy.get(id);
    if (reason) return { frozen: false, reason };
    this.frozen.add(id);
    return { frozen: true };
  }
  async thaw(id: string) {
    this.calls.push(`thaw ${id}`);
    this.frozen.delete(id);
  }
  async status(id: string): Promise<ClusterRuntimeStatus> {
    const s = this.clusters.get(id);
    return { clusterId: id, phase: s ?? "absent", components: [], ...(this.frozen.has(id) ? { frozen: true } : {}) };
  }
  async credentials(id: string): Promise<ClusterCredentials> {
    return { clusterId: id, server: "https://fake", tenantKubeconfig: fakeKubeconfig(id), adminKubeconfig: "" };
  }
  async loadImage(archive: string, clusterId?: string): Promise<{ images: string[] }> {
    this.calls.push(`loadImage ${clusterId ?? "*"}`);
    return { images: ["docker.io/library/fake:1"] };
  }
  async list(): Promise<string[]> {
    return [...this.clusters.keys()];
  }
  /** Versions a test declares absent or run on another kubelet; every version is installed and its own by default. */
  readonly versions = new Map<string, { refuse?: TempkubeError; kubelet?: { version: string; reason: string } }>();
  checkVersion(kubernetesVersion: string): void {
    const refusal = this.versions.get(kubernetesVersion)?.refuse;
    if (refusal) throw refusal;
  }
  kubeletFor(kubernetesVersion: string): { version: string; reason: string } | undefined {
    return this.versions.get(kubernetesVersion)?.kubelet;
  }
}

/** A tenant without limits, for tests about something else than quotas. */
export const unlimitedTenant: TokenIdentity = { id: 1, name: "ci", admin: false, limits: NO_LIMITS };

/** A kubeconfig shaped like the local runtime's (names carry the id), pointing nowhere. */
export function fakeKubeconfig(id: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: tempkube-${id}
    cluster: { server: "https://fake" }
users:
  - name: tempkube-${id}-tenant
    user: { token: fake }
contexts:
  - name: tempkube-${id}
    context: { cluster: tempkube-${id}, user: tempkube-${id}-tenant }
current-context: tempkube-${id}
`;
}
