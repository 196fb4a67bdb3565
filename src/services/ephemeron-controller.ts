import { createPrivateKey, X509Certificate } from "node:crypto";
import { request } from "node:http";
import { resolve } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Clock } from "../core/clock.js";
import { GatewayPaths, type HttpRoute } from "../gateway/gateway-files.js";
import {
  controllingEphemeron,
  ephemeronPod,
  ephemeronService,
  isOwnedBy,
  podReadiness,
  serviceNodePort,
  serviceSpecPatch,
  type ConditionValue,
} from "./ephemeron-children.js";
import { ExpiryTimers } from "./ephemeron-expiry.js";
import { apiStatus, describeApiError, EphemeronKube, type Cached } from "./ephemeron-kube.js";
import { ownedHttpRoutes, removeHttpRoute, routeOwner, writeHttpRoute, writeTlsCopy } from "./ephemeron-route.js";
import { DNS_LABEL, expirationMs, validateEphemeron } from "./ephemeron-spec.js";
import { NOTIFICATION_EMAIL_ANNOTATION } from "../core/service-notifications.js";
import {
  CREATED_BY_ANNOTATION,
  HOST_ANNOTATION,
  NAME_LABEL,
  type Ephemeron,
  type EphemeronCondition,
  type EphemeronConditionType,
} from "./ephemeron-types.js";
import type { ServiceEvent } from "../core/service-notifications.js";

/** What the controller tells of an Ephemeron: core's ServiceEvent (one definition), less the URL the server adds. */
export type EphemeronEvent = Omit<ServiceEvent, "url">;

export interface ControllerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface EphemeronControllerOptions {
  clusterId: string;
  /**
   * False for a cluster tempkube does not run (`tempkube ephemeron controller`): its routes
   * then name no cluster, so the gateway has nothing to wake and no activity to count.
   */
  gatewayKnowsCluster?: boolean;
  /** A kubeconfig of the cluster's admin (the ClusterRoute's adminKubeconfig). */
  adminKubeconfig: string;
  /** Where the cluster's NodePorts answer, reachable from the host (the ClusterRoute's nodeAddress). */
  nodeAddress: string;
  dataDir: string;
  /** The host name of an Ephemeron (ephemeronHost() with this cluster's place). */
  host: (name: string) => string;
  /** The gateway's HTTP listener: the Available check goes through it, as a user's request would. */
  gatewayHttp: { host: string; port: number };
  clock: Clock;
  log: ControllerLog;
  onEvent?: (event: EphemeronEvent) => void;
}

type PodObject = Parameters<typeof podReadiness>[0] & KubernetesObject;
type EphemeronObject = Ephemeron & KubernetesObject;

const PROBE_TIMEOUT_MS = 2_000;
/**
 * The first probes right after the Pod turns Ready give up sooner: until kube-proxy has
 * programmed the new endpoint, the gateway's connection to the node port loses its SYN, and
 * the kernel sends it again only after its 1 s initial retransmission timeout (TCP_TIMEOUT_INIT,
 * RFC 6298) — measured as Available ~1 s after the first 200 (`bench --services`). A new
 * probe 100 ms later is a new connection, through the rules by then in place. A service whose
 * readiness path takes longer than this is still found by the later, longer probes.
 */
const FIRST_PROBES_TIMEOUT_MS = 400;
/** Probes are short while the backoff between them is below this (the first four: 100, 160, 256, 410 ms apart). */
const SHORT_PROBES_UNTIL_DELAY_MS = 500;
/** Backoff of the Available check while the service does not answer 200 yet: fast at first (create → serving ≤ 2 s). */
const PROBE_BACKOFF = { firstMs: 100, factor: 1.6, maxMs: 5_000 };
/** Backoff of a reconcile that failed (API errors, a name taken by someone else's object). */
const ERROR_BACKOFF = { firstMs: 500, factor: 2, maxMs: 60_000 };
const INFORMER_BACKOFF = { firstMs: 500, factor: 2, maxMs: 30_000 };
/** Watch failures retried within this are logged as info: from the fourth failure in a row (retried after 4 s) on, a warning. */
const TRANSIENT_WATCH_FAILURE_MS = 2_000;

const next = (b: { firstMs: number; factor: number; maxMs: number }, prev: number | undefined) =>
  prev === undefined ? b.firstMs : Math.min(b.maxMs, Math.round(prev * b.factor));

/** An HTTP GET of `path` through the gateway with `Host: host`: the status code, or 0 when nothing answered. */
export function probeThroughGateway(
  gateway: { host: string; port: number },
  host: string,
  path: string,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<number> {
  return new Promise((resolve) => {
    // A wildcard listen address is not one to connect to: the gateway answers on loopback too.
    const to =
      gateway.host === "0.0.0.0" || gateway.host === "" ? "127.0.0.1" : gateway.host === "::" ? "::1" : gateway.host;
    const req = request(
      { host: to, port: gateway.port, path, method: "GET", headers: { host }, timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(0));
    req.end();
  });
}

/**
 * One cluster's Ephemeron controller: level-triggered over three informers (Ephemerons
 * cluster-wide; the Pods and Services it labels in `default`), one reconcile at a time.
 * Each reconcile makes what is missing (a deleted Pod or Service comes back), writes the
 * gateway route, sets the conditions and, once a request through the gateway answers 200,
 * the `host` annotation. Expiry is by timer (ExpiryTimers); what expired while no
 * controller ran is found by the first list and deleted at once.
 */
export class EphemeronController {
  private readonly kube: EphemeronKube;
  private readonly paths: GatewayPaths;
  private readonly timers: ExpiryTimers;
  private ephemerons?: Cached<EphemeronObject>;
  private pods?: Cached<KubernetesObject>;
  private services?: Cached<KubernetesObject>;
  private readonly queue = new Set<string>();
  private draining = false;
  private stopped = false;
  private readonly retries = new Map<string, { handle: unknown; delay: number; kind: "probe" | "error" }>();
  private readonly informerRetries = new Set<unknown>();
  private readonly expiring = new Set<string>();
  /** Uids deleted at their expiry, until their delete event (forget). */
  private readonly expired = new Set<string>();
  /** Uids whose "available" event went out: once per Ephemeron, however its status flaps or the cache lags. */
  private readonly announced = new Set<string>();
  private startWork?: Promise<unknown>;

  constructor(private readonly o: EphemeronControllerOptions) {
    this.kube = new EphemeronKube(o.adminKubeconfig);
    // Absolute: the gateway takes only absolute certificate paths (HttpRoute.tls).
    this.paths = new GatewayPaths(resolve(o.dataDir));
    // Expiry does not wait in the queue behind a reconcile (a probe can take PROBE_TIMEOUT_MS).
    this.timers = new ExpiryTimers(o.clock, (name) => void this.expireIfDue(name));
  }

  /** Lists and watches; resolves once the first lists are in and stale routes are gone. Errors retry by themselves. */
  async start(): Promise<void> {
    this.ephemerons = this.kube.ephemeronInformer();
    this.pods = this.kube.podInformer();
    this.services = this.kube.serviceInformer();
    const byEphemeron = (obj: KubernetesObject) => this.enqueue(obj.metadata?.name);
    const byChild = (obj: KubernetesObject) =>
      this.enqueue(controllingEphemeron(obj) ?? obj.metadata?.labels?.[NAME_LABEL]);
    this.ephemerons.on("add", byEphemeron);
    this.ephemerons.on("update", byEphemeron);
    this.ephemerons.on("delete", byEphemeron);
    for (const inf of [this.pods, this.services]) {
      inf.on("add", byChild);
      inf.on("update", byChild);
      inf.on("delete", byChild);
    }
    this.startWork = Promise.all([
      this.startInformer("ephemerons", this.ephemerons),
      this.startInformer("pods", this.pods),
      this.startInformer("services", this.services),
    ]);
    await this.startWork;
    if (!this.stopped) await this.removeStaleRoutes();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.clear();
    for (const r of this.retries.values()) this.o.clock.clearTimer(r.handle);
    this.retries.clear();
    for (const h of this.informerRetries) this.o.clock.clearTimer(h);
    this.informerRetries.clear();
    const informers = [this.ephemerons, this.pods, this.services].filter((i) => i !== undefined);
    await Promise.all(informers.map((i) => i.stop()));
    // ListWatch.stop() during its first list still opens the watch after the list returns
    // (cache.js doneHandler): wait for the start to settle, then stop again.
    await this.startWork?.catch(() => undefined);
    await Promise.all(informers.map((i) => i.stop()));
    this.queue.clear();
  }

  /** Armed expiry timers (for tests and metrics). */
  get timerCount(): number {
    return this.timers.size;
  }

  /**
   * Ephemerons in this cluster now, from the informer's cache (no request: /metrics asks at
   * every scrape). Those being deleted are left out; 0 until the first list is in.
   */
  count(): number {
    return (this.ephemerons?.list() ?? []).filter((e) => !e.metadata?.deletionTimestamp).length;
  }

  private async startInformer(what: string, inf: Cached<KubernetesObject>, delay?: number): Promise<void> {
    let failed = false;
    // A watch that ends well restarts by itself; after an error the informer stops, so restart it here.
    const onConnect = () => {
      if (!failed) delay = undefined;
    };
    const onError = (err: unknown) => {
      if (this.stopped || failed) return;
      failed = true;
      // The next attempt registers its own handlers: none pile up on an informer that keeps failing.
      inf.off("error", onError);
      inf.off("connect", onConnect);
      const wait = next(INFORMER_BACKOFF, delay);
      // A cluster that is booting (its CRD's storage still initializing), stopping or going to
      // sleep fails its watches for a second or two: said only once the retries go on longer.
      const level = wait > TRANSIENT_WATCH_FAILURE_MS ? "warn" : "info";
      this.o.log[level](
        { clusterId: this.o.clusterId, what, err: describeApiError(err), retryMs: wait },
        "ephemeron watch failed",
      );
      const handle = this.o.clock.setTimer(() => {
        this.informerRetries.delete(handle);
        if (!this.stopped) void this.startInformer(what, inf, wait);
      }, wait);
      this.informerRetries.add(handle);
    };
    inf.on("error", onError);
    inf.on("connect", onConnect);
    await inf.start().catch(onError);
  }

  private enqueue(name: string | undefined): void {
    // Names come from objects a tenant can write (an owner reference's name is not validated
    // by the apiserver): only a DNS label can be an Ephemeron's, and only one may name a file.
    if (!name || this.stopped || !DNS_LABEL.test(name)) return;
    this.queue.add(name);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.size > 0 && !this.stopped) {
        const [name] = this.queue;
        this.queue.delete(name);
        try {
          await this.reconcile(name);
        } catch (err) {
          this.o.log.warn(
            { clusterId: this.o.clusterId, name, err: describeApiError(err) },
            "ephemeron reconcile failed",
          );
          this.retry(name, "error");
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private retry(name: string, kind: "probe" | "error"): void {
    if (this.stopped) return;
    const current = this.retries.get(name);
    if (current) this.o.clock.clearTimer(current.handle);
    const delay = next(
      kind === "probe" ? PROBE_BACKOFF : ERROR_BACKOFF,
      current?.kind === kind ? current.delay : undefined,
    );
    const handle = this.o.clock.setTimer(() => {
      if (this.retries.get(name)?.handle === handle) this.enqueue(name);
    }, delay);
    this.retries.set(name, { handle, delay, kind });
  }

  private settled(name: string): void {
    const current = this.retries.get(name);
    if (current) this.o.clock.clearTimer(current.handle);
    this.retries.delete(name);
  }

  private host(name: string): string {
    return this.o.host(name);
  }

  private async reconcile(name: string): Promise<void> {
    const eph = this.ephemerons?.get(name) as EphemeronObject | undefined;
    const owner = routeOwner(this.o.clusterId, name);
    if (!eph || eph.metadata.deletionTimestamp) {
      if (!eph) this.forget(name);
      this.timers.cancel(name);
      this.settled(name);
      await removeHttpRoute(this.paths, this.host(name), owner);
      // Its children at once, not when the garbage collector gets to them (it learns of a new
      // CRD's resource only at its next discovery, up to 30 s after the CRD appears).
      if (!eph) await this.deleteOrphans(name, undefined);
      return;
    }
    if (eph.metadata.uid) this.uids.set(name, eph.metadata.uid);
    const expires = expirationMs(eph);
    if (expires !== undefined) {
      if (expires <= this.o.clock.now()) return this.expire(eph);
      this.timers.set(name, expires);
    } else this.timers.cancel(name);

    const problems = validateEphemeron(eph);
    if (problems.length > 0) {
      const bad = { status: "False" as const, reason: "InvalidSpec", message: problems.join("; ") };
      await removeHttpRoute(this.paths, this.host(name), owner);
      await this.writeStatus(eph, { PodReady: bad, Available: bad });
      // Nothing to retry: the next change of the object brings it back here.
      this.settled(name);
      return;
    }

    await this.deleteOrphans(name, eph.metadata.uid);
    // Both at once: each is a round trip to the apiserver, on the way from apply to serving.
    const [pod, service] = await Promise.all([this.ensurePod(eph), this.ensureService(eph)]);
    if (typeof pod === "string" || typeof service === "string") {
      const conflict = {
        status: "False" as const,
        reason: "NameConflict",
        message: typeof pod === "string" ? pod : (service as string),
      };
      await this.writeStatus(eph, { PodReady: conflict, Available: conflict });
      return this.retry(name, "error");
    }
    const podReady = podReadiness(pod as PodObject | undefined);
    const nodePort = service ? serviceNodePort(service as never, eph) : undefined;

    let available: ConditionValue;
    let route: "ok" | ConditionValue = {
      status: "False",
      reason: "RoutePending",
      message: "waiting for the Service's node port",
    };
    if (nodePort !== undefined) route = await this.writeRoute(eph, nodePort);
    if (podReady.status !== "True") available = { status: "False", reason: podReady.reason, message: podReady.message };
    else if (route !== "ok") available = route;
    else if (this.isAvailable(eph)) available = { status: "True", reason: "Serving" };
    else {
      const path = eph.spec.service.readinessProbe?.path ?? "/";
      const previous = this.retries.get(name);
      const short = previous?.kind !== "probe" || previous.delay < SHORT_PROBES_UNTIL_DELAY_MS;
      const code = await probeThroughGateway(
        this.o.gatewayHttp,
        this.host(name),
        path,
        short ? FIRST_PROBES_TIMEOUT_MS : PROBE_TIMEOUT_MS,
      );
      available =
        code === 200
          ? { status: "True", reason: "Serving" }
          : {
              status: "False",
              reason: "NotServing",
              message: `GET ${path} through the gateway for ${this.host(name)} answered ${code === 0 ? "nothing" : code}`,
            };
    }
    const uid = eph.metadata.uid ?? name;
    if (this.isAvailable(eph)) this.announced.add(uid); // announced before (by this controller or the one before it)
    const becameAvailable = available.status === "True" && !this.announced.has(uid);
    if (becameAvailable) this.announced.add(uid);
    await this.writeStatus(eph, { PodReady: podReady, Available: available });
    if (available.status === "True" && eph.metadata.annotations?.[HOST_ANNOTATION] !== this.host(name))
      await this.kube.patchAnnotations(name, { [HOST_ANNOTATION]: this.host(name) });
    if (becameAvailable) {
      // Where create → serving goes (the benchmark): the Pod's readiness, then the rest.
      const created = Date.parse(eph.metadata.creationTimestamp ?? "");
      const podStatus = (pod as { status?: { conditions?: { type: string; lastTransitionTime?: string }[] } }).status;
      const ready = Date.parse(podStatus?.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime ?? "");
      this.o.log.info(
        {
          clusterId: this.o.clusterId,
          name,
          sinceCreatedMs: this.o.clock.now() - created,
          podReadyAfterMs: ready - created,
        },
        "ephemeron available",
      );
      this.emit("available", eph);
    }

    if (podReady.status === "True" && available.status !== "True") this.retry(name, "probe");
    else if (route !== "ok" && typeof route === "object" && route.reason !== "RoutePending") this.retry(name, "error");
    else this.settled(name);
  }

  private readonly uids = new Map<string, string>();
  private forget(name: string): void {
    const uid = this.uids.get(name);
    if (uid) {
      this.announced.delete(uid);
      this.expired.delete(uid);
    }
    this.uids.delete(name);
  }

  /** Pods and Services of an Ephemeron `name` other than the one of uid `keep` (gone, or an earlier one of that name). */
  private async deleteOrphans(name: string, keep: string | undefined): Promise<void> {
    // One already terminating is deleted again with grace 0: the garbage collector's delete
    // gives the default 30 s, and a server running as PID 1 (httpd) ignores SIGTERM.
    const stale = (obj: KubernetesObject | undefined) =>
      obj &&
      (obj.metadata as { deletionGracePeriodSeconds?: number } | undefined)?.deletionGracePeriodSeconds !== 0 &&
      controllingEphemeron(obj) === name &&
      !obj.metadata?.ownerReferences?.some((o) => o.controller && o.uid === keep);
    const pod = this.pods?.get(name, "default");
    const svc = this.services?.get(name, "default");
    const ignoreGone = (err: unknown) => {
      if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw err;
    };
    await Promise.all([
      stale(pod) ? this.kube.deletePod(name, pod!.metadata?.uid, 0).catch(ignoreGone) : undefined,
      stale(svc) ? this.kube.deleteService(name, svc!.metadata?.uid).catch(ignoreGone) : undefined,
    ]);
  }

  private isAvailable(eph: Ephemeron): boolean {
    return eph.status?.conditions?.find((c) => c.type === "Available")?.status === "True";
  }

  /** The Pod, made if missing; a message when the name is another's; recreated when the spec changed. */
  private async ensurePod(eph: EphemeronObject): Promise<KubernetesObject | string | undefined> {
    const name = eph.metadata.name;
    const desired = ephemeronPod(eph);
    let pod = this.pods?.get(name, "default");
    if (pod && !isOwnedBy(pod, eph)) pod = undefined; // a stale one of an earlier Ephemeron of this name: the GC takes it
    if (!pod) {
      try {
        return await this.kube.createPod(desired);
      } catch (err) {
        if (apiStatus(err) !== 409) throw err;
        const existing = await this.kube.readPod(name);
        if (isOwnedBy(existing, eph)) return existing;
        if (existing.metadata?.deletionTimestamp) return undefined; // on its way out: its delete event brings us back
        return `a Pod default/${name} that this Ephemeron did not make exists; rename the Ephemeron or delete that Pod`;
      }
    }
    // Pods are immutable where it matters: a changed image, command, port, env… means a new Pod.
    const want = (desired.spec as { containers: unknown[] }).containers[0] as Record<string, unknown>;
    const have = ((pod as { spec?: { containers?: Record<string, unknown>[] } }).spec?.containers ?? [])[0] ?? {};
    const changed = (["image", "command", "workingDir", "env", "ports", "readinessProbe"] as const).some(
      (k) => JSON.stringify(normalize(want[k])) !== JSON.stringify(normalize(have[k])),
    );
    if (changed && !pod.metadata?.deletionTimestamp) {
      await this.kube.deletePod(name, pod.metadata?.uid, 0).catch((err) => {
        if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw err;
      });
      return undefined;
    }
    return pod;
  }

  private async ensureService(eph: EphemeronObject): Promise<KubernetesObject | string | undefined> {
    const name = eph.metadata.name;
    let svc = this.services?.get(name, "default");
    if (svc && !isOwnedBy(svc, eph)) svc = undefined;
    if (!svc) {
      try {
        return await this.kube.createService(ephemeronService(eph));
      } catch (err) {
        if (apiStatus(err) !== 409) throw err;
        const existing = await this.kube.readService(name);
        if (isOwnedBy(existing, eph)) svc = existing;
        else if (existing.metadata?.deletionTimestamp) return undefined;
        else
          return `a Service default/${name} that this Ephemeron did not make exists; rename the Ephemeron or delete that Service`;
      }
    }
    if (serviceNodePort(svc as never, eph) === undefined) {
      // Changed by someone (type, selector, ports): put it back; the node port comes from the apiserver again.
      return this.kube.patchService(name, serviceSpecPatch(eph));
    }
    return svc;
  }

  private async writeRoute(eph: EphemeronObject, nodePort: number): Promise<"ok" | ConditionValue> {
    const name = eph.metadata.name;
    const hostname = this.host(name);
    let tls: HttpRoute["tls"] = "gateway";
    const secretName = eph.spec.service.tlsSecretName;
    if (secretName) {
      let secret;
      try {
        secret = await this.kube.readTlsSecret(secretName);
      } catch (err) {
        if (apiStatus(err) !== 404 && apiStatus(err) !== 403) throw err;
        return {
          status: "False",
          reason: "TLSSecretMissing",
          message: `Secret default/${secretName} (spec.service.tlsSecretName) was not found`,
        };
      }
      const cert = secret.data?.["tls.crt"];
      const key = secret.data?.["tls.key"];
      if (secret.type !== "kubernetes.io/tls" || !cert || !key)
        return {
          status: "False",
          reason: "TLSSecretInvalid",
          message: `Secret default/${secretName} must be of type kubernetes.io/tls with tls.crt and tls.key`,
        };
      const pem = {
        cert: Buffer.from(cert, "base64").toString("utf8"),
        key: Buffer.from(key, "base64").toString("utf8"),
      };
      // The gateway refuses the handshake with a certificate that does not name the host or
      // match its key (gateway-files.ts, HttpRoute.tls): say so here, where the user looks.
      const problem = certificateProblem(pem, hostname);
      if (problem)
        return { status: "False", reason: "TLSSecretInvalid", message: `Secret default/${secretName}: ${problem}` };
      tls = await writeTlsCopy(this.paths, hostname, pem);
    }
    const written = await writeHttpRoute(this.paths, {
      hostname,
      target: `${this.o.nodeAddress}:${nodePort}`,
      clusterId: this.o.gatewayKnowsCluster === false ? undefined : this.o.clusterId,
      tls,
      owner: routeOwner(this.o.clusterId, name),
    });
    if (written === "taken")
      return {
        status: "False",
        reason: "HostTaken",
        message: `the host name ${hostname} is routed to something else already`,
      };
    return "ok";
  }

  private async writeStatus(
    eph: EphemeronObject,
    values: Record<EphemeronConditionType, ConditionValue>,
  ): Promise<void> {
    const now = new Date(this.o.clock.now()).toISOString();
    const current = eph.status?.conditions ?? [];
    const conditions: EphemeronCondition[] = (["PodReady", "Available"] as const).map((type) => {
      const had = current.find((c) => c.type === type);
      const v = values[type];
      return {
        type,
        status: v.status,
        lastTransitionTime: had && had.status === v.status && had.lastTransitionTime ? had.lastTransitionTime : now,
        ...(v.reason ? { reason: v.reason } : {}),
        ...(v.message ? { message: v.message.slice(0, 1024) } : {}),
      };
    });
    const generation = eph.metadata.generation;
    const same =
      eph.status?.observedGeneration === generation &&
      current.length === conditions.length &&
      conditions.every((c) => {
        const had = current.find((h) => h.type === c.type);
        return had && had.status === c.status && had.reason === c.reason && had.message === c.message;
      });
    if (same) return;
    try {
      await this.kube.patchStatus(eph.metadata.name, { conditions, observedGeneration: generation });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err; // gone meanwhile: its delete event follows
    }
  }

  private async expireIfDue(name: string): Promise<void> {
    const eph = this.ephemerons?.get(name) as EphemeronObject | undefined;
    const expires = eph ? expirationMs(eph) : undefined;
    if (!eph || this.stopped) return;
    if (expires === undefined || expires > this.o.clock.now()) return this.enqueue(name);
    await this.expire(eph).catch((err) => {
      this.o.log.warn({ clusterId: this.o.clusterId, name, err: describeApiError(err) }, "ephemeron expiry failed");
      this.retry(name, "error");
    });
  }

  private async expire(eph: EphemeronObject): Promise<void> {
    const name = eph.metadata.name;
    const uid = eph.metadata.uid ?? name;
    // Once per Ephemeron: until its delete event arrives the cache still holds it, and a
    // reconcile meanwhile would find it expired again.
    if (this.expiring.has(uid) || this.expired.has(uid)) return;
    this.expiring.add(uid);
    const t0 = this.o.clock.now();
    try {
      this.timers.cancel(name);
      this.settled(name);
      // The route first: from this moment the host name answers nothing.
      await removeHttpRoute(this.paths, this.host(name), routeOwner(this.o.clusterId, name));
      const ignoreGone = (err: unknown) => {
        if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw err;
        return undefined;
      };
      // Each child by its own chain, beside the Ephemeron's delete. Right after a start the
      // child informers may not have listed yet: ask the API rather than leave the children
      // to the garbage collector (seconds, not milliseconds).
      const pod = async () => {
        const p = this.pods?.get(name, "default") ?? (await this.kube.readPod(name).catch(ignoreGone));
        if (p && isOwnedBy(p, eph)) await this.kube.deletePod(name, p.metadata?.uid, 0).catch(ignoreGone);
      };
      const svc = async () => {
        const v = this.services?.get(name, "default") ?? (await this.kube.readService(name).catch(ignoreGone));
        if (v && isOwnedBy(v, eph)) await this.kube.deleteService(name, v.metadata?.uid).catch(ignoreGone);
      };
      await Promise.all([pod(), svc(), this.kube.deleteEphemeron(name, eph.metadata.uid).catch(ignoreGone)]);
      this.expired.add(uid);
      const now = this.o.clock.now();
      this.o.log.info(
        { clusterId: this.o.clusterId, name, lateMs: t0 - (expirationMs(eph) ?? t0), tookMs: now - t0 },
        "ephemeron expired",
      );
      this.emit("expired", eph);
    } finally {
      this.expiring.delete(uid);
    }
  }

  private emit(type: EphemeronEvent["type"], eph: Ephemeron): void {
    try {
      this.o.onEvent?.(ephemeronEvent(type, this.o.clusterId, this.host(eph.metadata.name), eph, this.o.clock.now()));
    } catch (err) {
      this.o.log.warn({ err: String(err) }, "ephemeron event listener failed");
    }
  }

  /** Route files this cluster's controller wrote whose Ephemeron no longer exists (deleted while it was not running). */
  private async removeStaleRoutes(): Promise<void> {
    const owned = await ownedHttpRoutes(this.paths, this.o.clusterId);
    for (const [hostname, name] of owned) {
      const eph = this.ephemerons?.get(name);
      if (!eph || this.host(name) !== hostname)
        await removeHttpRoute(this.paths, hostname, routeOwner(this.o.clusterId, name));
    }
  }
}

/** The event of an Ephemeron, with what the notifications need of it (core/service-notifications.ts ServiceEvent). */
export function ephemeronEvent(
  type: EphemeronEvent["type"],
  clusterId: string,
  host: string,
  eph: Ephemeron,
  at: number,
): EphemeronEvent {
  const annotations = eph.metadata.annotations ?? {};
  const optional = {
    createdBy: annotations[CREATED_BY_ANNOTATION],
    uid: eph.metadata.uid,
    // A string, whatever a tenant's object holds (the CRD's schema says so, but the event leaves this process).
    expirationTime: typeof eph.spec?.expirationTime === "string" ? eph.spec.expirationTime : undefined,
    notificationEmail: annotations[NOTIFICATION_EMAIL_ANNOTATION],
  };
  const event: EphemeronEvent = { type, clusterId, name: eph.metadata.name, host, at };
  for (const [k, v] of Object.entries(optional))
    if (typeof v === "string" && v !== "") Object.assign(event, { [k]: v });
  return event;
}

/** Why a kubernetes.io/tls Secret cannot serve `hostname`, or undefined when it can. */
export function certificateProblem(pem: { cert: string; key: string }, hostname: string): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem.cert);
  } catch {
    return "tls.crt is not a PEM certificate";
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(pem.key))) return "tls.key is not the key of tls.crt";
  } catch {
    return "tls.key is not a PEM private key";
  }
  if (!cert.checkHost(hostname)) return `its certificate does not name ${hostname}`;
  if (Date.parse(cert.validTo) < Date.now()) return `its certificate expired on ${cert.validTo}`;
  return undefined;
}

/** The API server fills defaults (protocol TCP, env value ""): compare what both sides name. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) {
      if (k === "protocol" || k === "scheme" || k === "successThreshold" || k === "failureThreshold") continue;
      if (k === "timeoutSeconds" && x === 1) continue;
      if (k === "periodSeconds" && x === 10) continue;
      if (k === "value" && x === "") continue;
      out[k] = normalize(x);
    }
    return out;
  }
  return v;
}
