import { connect, type Socket } from "node:net";
import { KEEPALIVE_DELAY_MS, splitHostPort } from "./gateway-context.js";

/** How long a refused connect is retried right after a wake. */
export const RETRY_AFTER_WAKE_MS = 5_000;

/**
 * A TCP connection to a cluster's address. Right after a wake the runtime has seen the
 * apiserver ready, but a refused connect is retried for a few seconds all the same: it costs
 * nothing and spares a client a failure for a listener still settling.
 */
export async function connectUpstream(address: string, retryForMs: number): Promise<Socket> {
  const { host, port } = splitHostPort(address);
  const deadline = Date.now() + retryForMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const sock = connect({ host, port, allowHalfOpen: true });
        sock.setTimeout(10_000, () => sock.destroy(new Error(`connect to ${address} timed out`)));
        sock.once("connect", () => {
          sock.setTimeout(0);
          sock.setKeepAlive(true, KEEPALIVE_DELAY_MS);
          sock.removeListener("error", reject);
          resolve(sock);
        });
        sock.once("error", reject);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (Date.now() > deadline || (code !== "ECONNREFUSED" && code !== "EHOSTUNREACH")) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
