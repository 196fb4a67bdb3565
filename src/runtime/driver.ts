import type { ClusterSpec } from "../core/cluster-spec.js";

/** How far a cluster got, as the driver sees it on the host. */
export type RuntimePhase = "provisioning" | "running" | "stopped" | "failed" | "absent";

export interface ClusterCredentials {
  clusterId: string;
  server: string;
  /** For the user: member of the tenants group, no power over cluster-wide RBAC. */
  tenantKubeconfig: string;
  /** For tempkube itself (system:masters). */
  adminKubeconfig: string;
}

export interface ComponentStatus {
  name: string;
  running: boolean;
}

export interface ClusterRuntimeStatus {
  clusterId: string;
  phase: RuntimePhase;
  components: ComponentStatus[];
  /** Its processes are frozen (idle; the next connection through the gateway thaws them). */
  frozen?: boolean;
}

/** What a freeze did: nothing when something of the tenant's runs (the reason says what). */
export type FreezeOutcome = { frozen: true } | { frozen: false; reason: string };

/** Time spent in each step of an operation, for progress output and `tempkube bench`. */
export type StepTimings = Record<string, number>;

/** The one small interface every runtime driver implements (local today; host-cluster and cloud later). */
export interface RuntimeDriver {
  provision(
    spec: ClusterSpec,
    onStep?: (step: string) => void,
  ): Promise<{ credentials: ClusterCredentials; timings: StepTimings }>;
  start(clusterId: string, onStep?: (step: string) => void): Promise<{ timings: StepTimings }>;
  stop(clusterId: string): Promise<void>;
  /**
   * Freezes a running cluster's processes in place (no CPU, memory kept) unless something of the
   * tenant's runs or is due in it. Stop, destroy, start and per-cluster image loads thaw first.
   */
  freeze(clusterId: string): Promise<FreezeOutcome>;
  /** Thaws a frozen cluster (in milliseconds); nothing when it is not frozen. */
  thaw(clusterId: string): Promise<void>;
  destroy(clusterId: string): Promise<void>;
  status(clusterId: string): Promise<ClusterRuntimeStatus>;
  credentials(clusterId: string): Promise<ClusterCredentials>;
  /**
   * Makes an image archive usable by every cluster on the host, or by one cluster when given;
   * returns the image references the archive named (what pods use).
   */
  loadImage(archivePath: string, clusterId?: string): Promise<{ images: string[] }>;
  list(): Promise<string[]>;
  /**
   * Refuses (throws) a Kubernetes version this host cannot make a cluster of now: not offered
   * (invalid-input), offered but not installed (not-installed, naming the command), or not
   * runnable here (conflict). Synchronous and cheap: creates call it in the request path, so
   * a refused create leaves no record behind.
   */
  checkVersion(kubernetesVersion: string): void;
  /**
   * The kubelet release the nodes of a cluster of that version run on this host, when it is
   * not the control plane's own (with why); undefined when it is. Cheap: for every answer.
   */
  kubeletFor(kubernetesVersion: string): { version: string; reason: string } | undefined;
}
