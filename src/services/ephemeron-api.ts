import type { CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { TempkubeError } from "../util/errors.js";
import { EPHEMERON_GROUP, EPHEMERON_PLURAL, EPHEMERON_VERSION, type Ephemeron } from "./ephemeron-types.js";

/**
 * The Ephemeron objects of the services cluster: the only record of the services the API
 * made (no table of its own), as in the reference, whose API talks to the cluster directly.
 * Errors: TempkubeError — `conflict` (name taken), `not-found` (patch of a missing object),
 * `invalid-input` (the API server refused the object: its message), `host` (the cluster did
 * not answer: 503).
 */
export interface EphemeronApi {
  create(e: Ephemeron): Promise<Ephemeron>;
  /** undefined when there is none of that name. */
  get(name: string): Promise<Ephemeron | undefined>;
  /** All of them, or those matching a label selector ("a=b,c"). */
  list(labelSelector?: string): Promise<Ephemeron[]>;
  /** Moves `spec.expirationTime` (a merge patch, as the reference's PATCH handler does). */
  patchExpiration(name: string, expirationTime: string): Promise<Ephemeron>;
  /** Deletes it and, in the background, what it owns; false when there was none. */
  delete(name: string): Promise<boolean>;
  /**
   * The object once `done(it)` holds (it is undefined once deleted), watched rather than
   * polled; or, when `timeoutMs` passes or `signal` aborts first, the last state seen.
   */
  waitFor(
    name: string,
    done: (e: Ephemeron | undefined) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Ephemeron | undefined>;
}

const PATH = `/apis/${EPHEMERON_GROUP}/${EPHEMERON_VERSION}/${EPHEMERON_PLURAL}`;
const RESOURCE = { group: EPHEMERON_GROUP, version: EPHEMERON_VERSION, plural: EPHEMERON_PLURAL };

/**
 * EphemeronApi over @kubernetes/client-node 1.x (CustomObjectsApi, cluster-scoped objects),
 * with the services cluster's admin kubeconfig. client-node is loaded on first use only:
 * a server without services never pays for it.
 */
/** How long a call waits for the Ephemeron resource of a just-made cluster to be served. */
const RESOURCE_WAIT_MS = 20_000;

/** The pause before trying again when the resource is not served yet (429 or 404 of the resource type), else undefined. */
function notServedYet(err: unknown): number | undefined {
  const cause = (err as { cause?: { code?: number; body?: unknown; headers?: Record<string, string> } }).cause;
  if (!(err instanceof TempkubeError) || !cause || typeof cause.code !== "number") return undefined;
  const message = statusMessage(cause.body) ?? "";
  const details = (typeof cause.body === "string" ? safeJson(cause.body) : cause.body) as
    { details?: { name?: string } } | undefined;
  const typeMissing =
    cause.code === 404 && !details?.details?.name && /could not find the requested resource/.test(message);
  if (cause.code !== 429 && !typeMissing) return undefined;
  const retryAfter = Number(cause.headers?.["retry-after"]);
  return Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 2_000) : 500;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class KubeEphemeronApi implements EphemeronApi {
  private constructor(
    private readonly k8s: typeof import("@kubernetes/client-node"),
    private readonly config: KubeConfig,
    private readonly objects: CustomObjectsApi,
  ) {}

  static async fromKubeconfigFile(file: string): Promise<KubeEphemeronApi> {
    const k8s = await import("@kubernetes/client-node");
    const config = new k8s.KubeConfig();
    try {
      config.loadFromFile(file);
    } catch (err) {
      throw new TempkubeError(
        "host",
        `services cluster: cannot read its kubeconfig ${file}: ${(err as Error).message}`,
      );
    }
    return new KubeEphemeronApi(k8s, config, config.makeApiClient(k8s.CustomObjectsApi));
  }

  /** From a kubeconfig's text (the services cluster's admin kubeconfig: ServicesCluster.ensure). */
  static async fromKubeconfig(text: string): Promise<KubeEphemeronApi> {
    const k8s = await import("@kubernetes/client-node");
    const config = new k8s.KubeConfig();
    try {
      config.loadFromString(text);
    } catch (err) {
      throw new TempkubeError("host", `services cluster: its kubeconfig does not read: ${(err as Error).message}`);
    }
    return new KubeEphemeronApi(k8s, config, config.makeApiClient(k8s.CustomObjectsApi));
  }

  async create(e: Ephemeron): Promise<Ephemeron> {
    return this.call(`create ${e.metadata.name}`, () =>
      this.objects.createClusterCustomObject({ ...RESOURCE, body: e }),
    ) as Promise<Ephemeron>;
  }

  async get(name: string): Promise<Ephemeron | undefined> {
    try {
      return (await this.call(`get ${name}`, () =>
        this.objects.getClusterCustomObject({ ...RESOURCE, name }),
      )) as Ephemeron;
    } catch (err) {
      if (err instanceof TempkubeError && err.type === "not-found") return undefined;
      throw err;
    }
  }

  async list(labelSelector?: string): Promise<Ephemeron[]> {
    const list = (await this.call("list", () =>
      this.objects.listClusterCustomObject({ ...RESOURCE, ...(labelSelector ? { labelSelector } : {}) }),
    )) as { items: Ephemeron[] };
    return list.items;
  }

  async patchExpiration(name: string, expirationTime: string): Promise<Ephemeron> {
    return this.call(`patch ${name}`, () =>
      this.objects.patchClusterCustomObject(
        { ...RESOURCE, name, body: { spec: { expirationTime } } },
        this.k8s.setHeaderOptions("Content-Type", this.k8s.PatchStrategy.MergePatch),
      ),
    ) as Promise<Ephemeron>;
  }

  async delete(name: string): Promise<boolean> {
    try {
      await this.call(`delete ${name}`, () =>
        // Background, as the reference (handlers.rs delete): the answer does not wait for the pod to go.
        this.objects.deleteClusterCustomObject({ ...RESOURCE, name, propagationPolicy: "Background" }),
      );
      return true;
    } catch (err) {
      if (err instanceof TempkubeError && err.type === "not-found") return false;
      throw err;
    }
  }

  async waitFor(
    name: string,
    done: (e: Ephemeron | undefined) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Ephemeron | undefined> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.get(name);
    const watch: Watch = new this.k8s.Watch(this.config);
    while (!done(last) && Date.now() < deadline && !signal?.aborted) {
      // From the version just read, so nothing between the read and the watch is missed; a
      // watch that ends (the API server closes them, or 410 Gone) starts again from a new read.
      const outcome = await new Promise<"done" | "ended">((resolve) => {
        let controller: AbortController | undefined;
        let settled = false;
        const finish = (how: "done" | "ended") => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          controller?.abort();
          resolve(how);
        };
        const onAbort = () => finish("ended");
        const timer = setTimeout(() => finish("ended"), Math.max(0, deadline - Date.now()));
        signal?.addEventListener("abort", onAbort);
        void watch
          .watch(
            PATH,
            {
              fieldSelector: `metadata.name=${name}`,
              resourceVersion: last?.metadata.resourceVersion,
              allowWatchBookmarks: false,
            },
            (type, obj: Ephemeron) => {
              if (type === "ADDED" || type === "MODIFIED") last = obj;
              else if (type === "DELETED") last = undefined;
              else return;
              if (done(last)) finish("done");
            },
            () => finish("ended"),
          )
          .then((c) => {
            controller = c;
            if (settled) c.abort();
          })
          .catch(() => finish("ended"));
      });
      if (outcome === "done") return last;
      if (Date.now() >= deadline || signal?.aborted) break;
      last = await this.get(name);
      // A watch refused at once (no network) would spin: a short pause before the next one.
      await new Promise((r) => setTimeout(r, 200));
    }
    return last;
  }

  /**
   * One API call, its refusals turned into the project's errors (the API server's own message kept).
   * Right after the services cluster is made its Ephemeron resource may not be served yet: the
   * apiserver answers 429 "storage is (re)initializing" while a new CRD's storage starts
   * (k8s.io/apiextensions-apiserver/pkg/apiserver/customresource_handler.go, with Retry-After),
   * and 404 "could not find the requested resource" until the CRD is established. Neither did
   * anything, so both are tried again, as the Retry-After says, for a few seconds.
   */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + RESOURCE_WAIT_MS;
    for (;;) {
      try {
        return await this.callOnce(what, fn);
      } catch (err) {
        const retryAfterMs = notServedYet(err);
        if (retryAfterMs === undefined || Date.now() + retryAfterMs > deadline) throw err;
        await new Promise((r) => setTimeout(r, retryAfterMs));
      }
    }
  }

  private async callOnce<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { code?: number; body?: unknown; message?: string };
      if (typeof e.code !== "number" || e.code < 100) {
        throw new TempkubeError("host", `services cluster: ${what} failed: ${e.message ?? String(err)}`, {
          cause: err,
        });
      }
      const message = statusMessage(e.body) ?? e.message ?? `HTTP ${e.code}`;
      if (e.code === 404) throw new TempkubeError("not-found", message, { cause: err });
      if (e.code === 409) throw new TempkubeError("conflict", message);
      if (e.code === 400 || e.code === 422) throw new TempkubeError("invalid-input", message);
      throw new TempkubeError("host", `services cluster: ${what} failed (HTTP ${e.code}): ${message}`, {
        cause: err,
      });
    }
  }
}

/** The `message` of a Kubernetes Status body (client-node 1.x hands it over as text). */
function statusMessage(body: unknown): string | undefined {
  let o = body;
  if (typeof body === "string") {
    try {
      o = JSON.parse(body);
    } catch {
      return body || undefined;
    }
  }
  const m = (o as { message?: unknown } | undefined)?.message;
  return typeof m === "string" ? m : undefined;
}

/**
 * `getApi` for EphemeralServices: makes the API (and with it, perhaps, the services cluster)
 * on the first request that needs it, shares that one making among requests that come
 * meanwhile, and keeps the result; a failure is not kept, so the next request tries again.
 */
export function onFirstUse(make: () => Promise<EphemeronApi>): () => Promise<EphemeronApi> {
  let pending: Promise<EphemeronApi> | undefined;
  return () => {
    pending ??= make().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
