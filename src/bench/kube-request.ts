import { Agent, request } from "node:https";
import YAML from "yaml";

type Kubeconfig = {
  clusters: {
    cluster: { server: string; "certificate-authority-data": string; "tls-server-name"?: string };
  }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
};

/**
 * GETs with a kubeconfig's credential, as kubectl makes them (SNI from `tls-server-name` when
 * the kubeconfig has one, so requests through the gateway are routed as kubectl's are).
 * keepAlive: reuse one connection (a client-go process); without, a new TLS connection per
 * request (what each kubectl command pays).
 */
export class KubeRequester {
  private readonly options: {
    ca: Buffer;
    cert: Buffer;
    key: Buffer;
    servername?: string;
    agent: Agent | false;
  };
  private readonly server: string;

  constructor(kubeconfig: string, keepAlive = false) {
    const k = YAML.parse(kubeconfig) as Kubeconfig;
    const b64 = (s: string) => Buffer.from(s, "base64");
    const cluster = k.clusters[0].cluster;
    this.server = cluster.server;
    this.options = {
      ca: b64(cluster["certificate-authority-data"]),
      cert: b64(k.users[0].user["client-certificate-data"]),
      key: b64(k.users[0].user["client-key-data"]),
      servername: cluster["tls-server-name"],
      agent: keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false,
    };
  }

  /** Resolves with the status code. */
  get(path: string, timeoutMs = 60_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, this.server), { ...this.options, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("timeout", () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end();
    });
  }

  close(): void {
    if (this.options.agent) this.options.agent.destroy();
  }
}
