import type { GatewayLink } from "../controller/gateway-link.js";
import type { GatewayActivity } from "../gateway/gateway-files.js";

/**
 * A gateway as the controller sees it, in memory: activity set by the test, markers and wake
 * requests as sets. What the controller does to it is appended to `calls` (pass the fake
 * driver's, to see the order of marker writes and runtime operations in one list).
 */
export class FakeGatewayLink implements GatewayLink {
  /** What `activity()` answers; undefined: no gateway answers. */
  current: GatewayActivity | undefined;
  readonly markers = new Set<string>();
  readonly requests = new Set<string>();
  private listener: ((id: string) => void) | undefined;
  /** Called as a marker is written: what happens at the gateway at that moment. */
  onMark: ((id: string) => void) | undefined;

  constructor(
    readonly calls: string[] = [],
    since = 0,
  ) {
    this.current = { since, clusters: {} };
  }

  /** A connection opened or closed at `at` through the gateway, leaving `open` open. */
  connection(id: string, at: number, open = 0): void {
    if (this.current) this.current.clusters[id] = { lastActiveAt: at, open };
  }

  /** What the gateway does when a connection for a sleeping cluster arrives. */
  requestWake(id: string): void {
    this.requests.add(id);
    this.listener?.(id);
  }

  async activity(): Promise<GatewayActivity | undefined> {
    return this.current && structuredClone(this.current);
  }
  async sleepingMarkers(): Promise<string[]> {
    return [...this.markers];
  }
  async markSleeping(id: string): Promise<void> {
    this.calls.push(`mark ${id}`);
    this.markers.add(id);
    this.onMark?.(id);
  }
  async clearSleeping(id: string): Promise<void> {
    this.calls.push(`clear ${id}`);
    this.markers.delete(id);
  }
  wakeRequests(onWake: (id: string) => void): () => void {
    this.listener = onWake;
    for (const id of this.requests) onWake(id);
    return () => {
      this.listener = undefined;
    };
  }
  async wakeHandled(id: string): Promise<void> {
    this.calls.push(`handled ${id}`);
    this.requests.delete(id);
  }
}
