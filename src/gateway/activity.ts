import type { GatewayActivity } from "./gateway-files.js";

/**
 * When each cluster last had a connection opened or closed through the gateway, and how many
 * are open now. The lifetime controller reads this (control socket, GET /activity) to put
 * idle clusters to sleep: an open connection (a watch, `logs -f`) keeps a cluster awake however
 * long it has been quiet.
 */
export class ActivityTracker {
  private readonly clusters = new Map<string, { lastActiveAt: number; open: number }>();

  constructor(
    readonly since: number = Date.now(),
    private readonly now: () => number = Date.now,
  ) {}

  opened(clusterId: string): void {
    const c = this.clusters.get(clusterId) ?? { lastActiveAt: 0, open: 0 };
    c.open++;
    c.lastActiveAt = this.now();
    this.clusters.set(clusterId, c);
  }

  closed(clusterId: string): void {
    const c = this.clusters.get(clusterId);
    if (!c) return;
    c.open = Math.max(0, c.open - 1);
    c.lastActiveAt = this.now();
  }

  open(clusterId: string): number {
    return this.clusters.get(clusterId)?.open ?? 0;
  }

  snapshot(): GatewayActivity {
    return { since: this.since, clusters: Object.fromEntries([...this.clusters].map(([id, c]) => [id, { ...c }])) };
  }
}
