import { DEFAULT_CLUSTER_DOMAIN } from "../gateway/gateway-files.js";
import { freePort } from "../util/net.js";

/** A server's gateway on loopback ports of its own, for benches that reach clusters through it. */
export async function loopbackGateway() {
  return {
    listen: { host: "127.0.0.1", port: await freePort() },
    httpListen: { host: "127.0.0.1", port: await freePort() },
    publicAddress: "127.0.0.1",
    clusterDomain: DEFAULT_CLUSTER_DOMAIN,
  };
}
