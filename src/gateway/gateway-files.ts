import { join } from "node:path";

/**
 * The gateway is a process of its own (supervised like a cluster's components, so open
 * connections outlive a restart or a SIGKILL of the tempkube server). It talks with the
 * rest of tempkube only through files under `<data dir>/gateway/` and one unix socket:
 *
 * - `config.json`        GatewayConfig; written by whoever starts the gateway (the server).
 * - `routes/<id>.json`   ClusterRoute; written by the local runtime when a cluster is provisioned
 *                        and at every start/stop, removed when it is destroyed. Any cluster of the
 *                        data dir is routable, made by the server or by `tempkube runtime create`.
 * - `sleeping/<id>`      present while the server has put the cluster to sleep (idle): a connection
 *                        for it is held and a wake is asked for instead of being refused.
 * - `wake/<id>`          written by the gateway when a connection for a sleeping cluster arrives;
 *                        the server starts the cluster, removes `sleeping/<id>`, then this file.
 * - `http-routes/<hostname>.json`  HttpRoute: a fixed HTTP route (ephemeral services, issue 14).
 * - `tls/ca.crt`, `tls/ca.key` (0600)  the gateway's own CA, made by the gateway at its first start;
 *                        it issues, on demand, the certificate of each host name whose HttpRoute has
 *                        `tls: "gateway"`. Clients trust it with `curl --cacert <gatewayCaPath>`.
 * - `control.sock`       served by the gateway over HTTP: `GET /metrics` (Prometheus text, merged
 *                        into the server's /metrics) and `GET /activity` (GatewayActivity).
 *
 * Everything is written whole and renamed into place, so a reader never sees half a file.
 */
export interface GatewayConfig {
  /** TLS passthrough to apiservers, routed by SNI `<id>.<clusterDomain>`. */
  listen: { host: string; port: number };
  /** HTTP to LoadBalancer Services, routed by `Host: <service>.<namespace>.<id>.<clusterDomain>`. */
  httpListen: { host: string; port: number };
  /** The name or address other machines reach this host by: the kubeconfigs' server. */
  publicAddress: string;
  clusterDomain: string;
  /**
   * The DNS domains the gateway's own CA may issue certificates under (its name constraints):
   * the cluster domain, and the services domain when it lies outside. Default: [clusterDomain].
   */
  certificateDomains?: string[];
}

export interface ClusterRoute {
  clusterId: string;
  /** "running" only once the runtime saw the cluster ready; anything else is refused at once (or woken). */
  phase: "running" | "stopped";
  /** host:port of the cluster's apiserver, reachable from the host (the control-plane node's address). */
  apiserver: string;
  /** Where LoadBalancer Services answer (kube-proxy on the control-plane node's address). */
  nodeAddress: string;
  /** Path of a kubeconfig with which the gateway may read Services (to find a LoadBalancer's port). */
  adminKubeconfig: string;
}

export interface HttpRoute {
  hostname: string;
  /** host:port to proxy to. */
  target: string;
  /** The cluster that serves it: a sleeping one is woken first, and requests count as its activity. */
  clusterId?: string;
  /**
   * HTTPS for this host name on the gateway's TLS port (terminated there, then proxied as HTTP):
   * PEM files (a copy of the Ephemeron's `tlsSecretName`), or "gateway" for the gateway's own
   * certificate for the name. Absent: HTTP only.
   * The files must be absolute paths without `.`/`..` segments, the certificate (first in the
   * file; intermediates may follow) must name `hostname` and match the key, else the handshake
   * is refused and the gateway logs why. They are read again when they change (inode, size, mtime).
   */
  tls?: { certFile: string; keyFile: string } | "gateway";
  /** Who wrote it, for clean-up: `ephemeron/<cluster id>/<name>`. */
  owner?: string;
}

export interface ClusterActivity {
  /** Epoch ms of the last connection opened or closed through the gateway. */
  lastActiveAt: number;
  /** Connections open now (an open watch or `logs -f` keeps a cluster awake). */
  open: number;
}

export interface GatewayActivity {
  /** Epoch ms the gateway process started: no cluster has been idle for longer than since then, as far as it knows. */
  since: number;
  clusters: Record<string, ClusterActivity>;
}

export const DEFAULT_CLUSTER_DOMAIN = "clusters.tempkube.local";
export const DEFAULT_GATEWAY_PORT = 6443;
export const DEFAULT_GATEWAY_HTTP_PORT = 8080;

export class GatewayPaths {
  constructor(readonly dataDir: string) {}
  get root(): string {
    return join(this.dataDir, "gateway");
  }
  get config(): string {
    return join(this.root, "config.json");
  }
  get routesDir(): string {
    return join(this.root, "routes");
  }
  route(clusterId: string): string {
    return join(this.routesDir, `${clusterId}.json`);
  }
  get sleepingDir(): string {
    return join(this.root, "sleeping");
  }
  sleeping(clusterId: string): string {
    return join(this.sleepingDir, clusterId);
  }
  get wakeDir(): string {
    return join(this.root, "wake");
  }
  wake(clusterId: string): string {
    return join(this.wakeDir, clusterId);
  }
  get httpRoutesDir(): string {
    return join(this.root, "http-routes");
  }
  get tlsDir(): string {
    return join(this.root, "tls");
  }
  get controlSocket(): string {
    return join(this.root, "control.sock");
  }
  get runDir(): string {
    return join(this.root, "run");
  }
  get logDir(): string {
    return join(this.root, "logs");
  }
}

/** The gateway CA's certificate (PEM, public): what clients trust for HTTPS to `tls: "gateway"` routes. */
export function gatewayCaPath(paths: GatewayPaths): string {
  return join(paths.tlsDir, "ca.crt");
}

/** The gateway CA's private key (0600; only the gateway reads it). */
export function gatewayCaKeyPath(paths: GatewayPaths): string {
  return join(paths.tlsDir, "ca.key");
}

/** The name a cluster is reached by through the gateway (SNI, the kubeconfig's tls-server-name, an apiserver SAN). */
export function clusterHostname(clusterId: string, clusterDomain: string): string {
  return `${clusterId}.${clusterDomain}`;
}

/** The HTTP name of a LoadBalancer Service (written to its status.loadBalancer.ingress[].hostname). */
export function serviceHostname(service: string, namespace: string, clusterId: string, clusterDomain: string): string {
  return `${service}.${namespace}.${clusterId}.${clusterDomain}`;
}
