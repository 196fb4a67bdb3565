import { request } from "node:https";

/**
 * A list served from the apiserver's watch cache as it is (`resourceVersion=0`). A list
 * without it is a consistent read: the cache first waits for kine to confirm it is current,
 * which in a burst of writes (a cluster starting) takes up to a second. Readiness checks
 * poll until what they read is fresh (conditions stamped after this boot) and the cache only
 * moves forward, so a slightly older snapshot can only make them look again.
 */
export function fromCache(path: string): string {
  return `${path}${path.includes("?") ? "&" : "?"}resourceVersion=0`;
}

/** A few authenticated requests to a cluster's apiserver, with the admin client certificate. */
export class KubeApi {
  constructor(
    private readonly server: string,
    private readonly tls: { ca: string; cert: string; key: string },
  ) {}

  get<T = unknown>(path: string, timeoutMs = 2000): Promise<{ status: number; body: T | undefined }> {
    return this.send<T>("GET", path, undefined, timeoutMs);
  }

  post<T = unknown>(path: string, body: unknown, timeoutMs = 5000): Promise<{ status: number; body: T | undefined }> {
    return this.send<T>("POST", path, body, timeoutMs, "application/json");
  }

  /** JSON merge patch (RFC 7386). */
  patch<T = unknown>(path: string, body: unknown, timeoutMs = 5000): Promise<{ status: number; body: T | undefined }> {
    return this.send<T>("PATCH", path, body, timeoutMs);
  }

  /**
   * Server-side apply of one object (JSON is YAML) at its path, taking every conflict, owned by
   * tempkube unless another field manager is named; `strict` refuses unknown or duplicate fields.
   */
  apply<T = unknown>(
    path: string,
    body: unknown,
    options: { fieldManager?: string; strict?: boolean; timeoutMs?: number } = {},
  ): Promise<{ status: number; body: T | undefined }> {
    const query = new URLSearchParams({ fieldManager: options.fieldManager ?? "tempkube", force: "true" });
    if (options.strict) query.set("fieldValidation", "Strict");
    return this.send<T>("PATCH", `${path}?${query}`, body, options.timeoutMs ?? 5000, "application/apply-patch+yaml");
  }

  private send<T>(
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
    contentType = "application/merge-patch+json",
  ): Promise<{ status: number; body: T | undefined }> {
    const url = new URL(path, this.server);
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = contentType;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, ...this.tls, timeout: timeoutMs, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let body: T | undefined;
          try {
            body = JSON.parse(text) as T;
          } catch {
            body = text as unknown as T;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
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
