import { request } from "node:https";

/** A few authenticated GETs against a cluster's apiserver, with the admin client certificate. */
export class KubeApi {
  constructor(private readonly server: string, private readonly tls: { ca: string; cert: string; key: string }) {}

  get<T = unknown>(path: string, timeoutMs = 2000): Promise<{ status: number; body: T | undefined }> {
    const url = new URL(path, this.server);
    return new Promise((resolve, reject) => {
      const req = request(url, { method: "GET", ...this.tls, timeout: timeoutMs, headers: { accept: "application/json" } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let body: T | undefined;
          try { body = JSON.parse(text) as T; } catch { body = text as unknown as T; }
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
      req.on("error", reject);
      req.end();
    });
  }

  /** True when GET answers 200; connection errors count as "not yet". */
  async ok(path: string): Promise<boolean> {
    try {
      return (await this.get(path)).status === 200;
    } catch {
      return false;
    }
  }
}
