import type { GatewayActivity } from "../gateway/gateway-files.js";

/**
 * What the lifetime controller needs of the gateway to put idle clusters to sleep and wake
 * them on connect (the files and socket of src/gateway/gateway-files.ts; the file side is
 * src/gateway/sleep-markers.ts). Without one, nothing is put to sleep.
 */
export interface GatewayLink {
  /** Connections per cluster as the gateway saw them; undefined when no gateway answers (then nothing sleeps). */
  activity(): Promise<GatewayActivity | undefined>;
  /** Clusters marked sleeping now (the marker files present), for a controller that starts with some. */
  sleepingMarkers(): Promise<string[]>;
  /** From now on the gateway holds a connection for this cluster and asks for a wake instead of refusing it. */
  markSleeping(clusterId: string): Promise<void>;
  /** The gateway routes (or refuses, by the cluster's route) connections for this cluster again. */
  clearSleeping(clusterId: string): Promise<void>;
  /**
   * Calls `onWake` for every wake request: those already waiting (made while no controller
   * listened) and each new one. A request may be reported more than once; it stays until
   * `wakeHandled`. Returns what ends the subscription.
   */
  wakeRequests(onWake: (clusterId: string) => void): () => void;
  /** Removes a wake request once acted on (the cluster woke, failed to, or needs no waking). */
  wakeHandled(clusterId: string): Promise<void>;
}
