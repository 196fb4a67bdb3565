import { Counter, Gauge, Registry } from "prom-client";

export type RefusalReason =
  | "no_sni"
  | "not_tls"
  | "sni_timeout"
  | "unknown_cluster"
  | "stopped"
  | "bad_host"
  | "wake_timeout"
  | "backend_error"
  /** An HTTPS handshake the gateway terminates failed (no certificate for the name, a bad hello, a client giving up). */
  | "tls_handshake"
  /** An HTTPS request whose Host is not the name its connection was made for (RFC 9110 §15.5.20). */
  | "misdirected";

/** The gateway's own registry (prefix tempkube_gateway_); the server merges its text into its /metrics. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connections = new Counter({
    name: "tempkube_gateway_connections_total",
    help: "Connections (TLS) and requests or upgrades (HTTP) routed to a cluster",
    labelNames: ["cluster", "protocol"],
    registers: [this.registry],
  });
  readonly bytes = new Counter({
    name: "tempkube_gateway_bytes_total",
    help: "Bytes through the gateway: in = from clients to the cluster, out = back to clients",
    labelNames: ["cluster", "direction"],
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: "tempkube_gateway_refused_total",
    help: "Connections or requests refused, by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly open = new Gauge({
    name: "tempkube_gateway_open_connections",
    help: "Connections open now, by cluster",
    labelNames: ["cluster"],
    registers: [this.registry],
  });
  readonly wakes = new Counter({
    name: "tempkube_gateway_wakes_requested_total",
    help: "Wakes asked of the server for sleeping clusters",
    registers: [this.registry],
  });

  refuse(reason: RefusalReason): void {
    this.refused.inc({ reason });
  }
}
