import { systemClock, type Clock } from "../core/clock.js";
import type { TokenIdentity } from "../core/quota.js";
import { NOTIFICATION_EMAIL_ANNOTATION, notificationEmailProblem } from "../core/service-notifications.js";
import type { EphemeronApi } from "../services/ephemeron-api.js";
import {
  CREATED_BY_ANNOTATION,
  EPHEMERON_GROUP,
  EPHEMERON_KIND,
  EPHEMERON_VERSION,
  GROUP_LABEL,
  HOST_ANNOTATION,
  type Ephemeron,
  type EphemeronCondition,
  type EphemeronService,
} from "../services/ephemeron-types.js";
import type { ServicesConfig } from "../services/presets.js";
import type { ServiceClaims } from "../services/service-auth.js";
import { MAX_SERVICE_MINUTES, ServiceSpecError, validateService } from "../services/service-spec.js";
import { newXid } from "../services/xid.js";
import { TempkubeError } from "../util/errors.js";

/**
 * Who asks, as the services see it: `sub` is what goes in the created-by annotation and what
 * ownership is checked against (`uid.app` for an /auth token, `token:<id>` for a tempkube
 * token); `gid` (`gid.app`, /auth only) becomes the pod's group label.
 */
export interface ServiceCaller {
  sub: string;
  gid: string | null;
  /** Sees and touches every service; may set the spec fields that reach into the shared cluster. */
  admin: boolean;
  /** How messages name the caller: `token "ci"`, or the sub of an /auth token. */
  label: string;
  maxServices: number | null;
  maxServiceMinutes: number | null;
}

/** A tempkube token as a services caller: its service limits apply. */
export function tokenCaller(t: TokenIdentity): ServiceCaller {
  return {
    sub: `token:${t.id}`,
    gid: null,
    admin: t.admin,
    label: `token "${t.name}"`,
    maxServices: t.admin ? null : t.limits.maxServices,
    maxServiceMinutes: t.admin ? null : t.limits.maxServiceMinutes,
  };
}

/**
 * An /auth token's holder: the reference puts no limits on them (its app can mint any uid, so
 * per-uid counts would not hold anyway); the lifetime is bounded by MAX_SERVICE_MINUTES.
 */
export function claimsCaller(c: ServiceClaims): ServiceCaller {
  return { sub: c.sub, gid: c.gid, admin: false, label: c.sub, maxServices: null, maxServiceMinutes: null };
}

export interface CreateServiceRequest {
  /** A preset of `--services-config`, or… */
  preset?: string;
  /** …a service spec of one's own (exactly one of the two). */
  service?: EphemeronService;
  lifetimeMinutes: number;
  /**
   * Where the service's notifications go (available, expired), as a cluster's `notificationEmail`:
   * written to NOTIFICATION_EMAIL_ANNOTATION, which the controller's events carry to the outbox.
   */
  notificationEmail?: string;
}

/** Where a service is at, from its object: the controller's conditions and `host` annotation. */
export type ServicePhase = "pending" | "starting" | "available" | "failed" | "deleting";

/** The JSON a client sees of a service (REST /v1/services). */
export interface ServiceView {
  id: string;
  /** Set by the controller once a request through the route answered 200; null until then. */
  host: string | null;
  url: string | null;
  expirationTime: string;
  tls: boolean;
  phase: ServicePhase;
  conditions: EphemeronCondition[];
  image: string;
  port: number;
  createdBy: string | null;
  createdAt: string | null;
  /** The address its notifications go to (NOTIFICATION_EMAIL_ANNOTATION), null without one. */
  notificationEmail: string | null;
}

/**
 * Condition reasons after which waiting is pointless: the pod will not start without a change
 * (the controller reports kubelet's waiting reasons, and InvalidSpec for a spec it refused).
 */
const FAILURE_REASONS = new Set([
  "InvalidSpec",
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CrashLoopBackOff",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

export interface EphemeralServicesOptions {
  /** The services cluster's objects; the cluster is made on first use, so this may take a while or fail (503). */
  getApi: () => Promise<EphemeronApi>;
  /** Presets (and the apps /auth knows, unused here). */
  config: Pick<ServicesConfig, "presets">;
  clock?: Clock;
  /** The gateway's ports, for `url` (the port is left out when it is the scheme's own). */
  gateway?: { httpPort: number; httpsPort?: number };
  /** How long `wait` waits for a service to serve before answering as it is (default 120 s). */
  waitTimeoutMs?: number;
  /** Told of each service made or deleted through this API (/metrics: tempkube_services_created_total, …_deleted_total). */
  onChange?: (what: "created" | "deleted") => void;
}

/**
 * The services API's operations (issue 14, deliverable 3), as the reference's handlers
 * (qualified/ephemeron src/api/handlers.rs) do them, over the services cluster's Ephemeron
 * objects: create from a preset or a spec with a lifetime, read, list, extend, delete.
 * Ownership is the created-by annotation, compared with the caller's `sub` (has_access);
 * admin tokens may act on every service.
 */
export class EphemeralServices {
  private readonly clock: Clock;
  private readonly waitTimeoutMs: number;
  /** Creates of one caller, one at a time: the count of its services is read, then added to. */
  private readonly creating = new Map<string, Promise<unknown>>();

  constructor(private readonly options: EphemeralServicesOptions) {
    this.clock = options.clock ?? systemClock;
    this.waitTimeoutMs = options.waitTimeoutMs ?? 120_000;
  }

  presetNames(): string[] {
    return [...this.options.config.presets.keys()];
  }

  /** A new service, expiring `lifetimeMinutes` from now. Its id is an xid (20 characters), as the reference's. */
  async create(who: ServiceCaller, req: CreateServiceRequest): Promise<Ephemeron> {
    const service = this.serviceFor(who, req);
    const minutes = this.lifetime(who, req.lifetimeMinutes);
    const email = notificationEmail(req.notificationEmail);
    const api = await this.api();
    return this.oneAtATime(who.sub, async () => {
      if (who.maxServices !== null) {
        const mine = (await api.list()).filter((e) => ownedBy(e, who.sub) && !e.metadata.deletionTimestamp);
        if (mine.length >= who.maxServices)
          throw new TempkubeError(
            "forbidden",
            `quota: ${who.label} may have ${who.maxServices} service(s) at once and has ${mine.length} (maxServices); delete one first`,
          );
      }
      const now = this.clock.now();
      const podLabels = { ...service.podLabels, ...(who.gid ? { [GROUP_LABEL]: who.gid } : {}) };
      const e: Ephemeron = {
        apiVersion: `${EPHEMERON_GROUP}/${EPHEMERON_VERSION}`,
        kind: EPHEMERON_KIND,
        metadata: {
          name: newXid(now),
          annotations: {
            [CREATED_BY_ANNOTATION]: who.sub,
            ...(email !== undefined ? { [NOTIFICATION_EMAIL_ANNOTATION]: email } : {}),
          },
        },
        spec: {
          expirationTime: new Date(now + minutes * 60_000).toISOString(),
          service: { ...service, ...(Object.keys(podLabels).length ? { podLabels } : {}) },
        },
      };
      const made = await api.create(e);
      this.options.onChange?.("created");
      return made;
    });
  }

  /** The service, if the caller may see it: 404 when there is none, 403 when it is someone else's. */
  async get(who: ServiceCaller, id: string): Promise<Ephemeron> {
    const e = await (await this.api()).get(id);
    if (!e) throw notFound(id);
    if (!who.admin && !ownedBy(e, who.sub)) throw new NotYoursError(id, who);
    return e;
  }

  /** The caller's services (every one for an admin), oldest first. */
  async list(who: ServiceCaller): Promise<Ephemeron[]> {
    const all = await (await this.api()).list();
    return all
      .filter((e) => who.admin || ownedBy(e, who.sub))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  /** A new expiry, `lifetimeMinutes` from now (the reference's PATCH). */
  async extend(who: ServiceCaller, id: string, lifetimeMinutes: number): Promise<Ephemeron> {
    const minutes = this.lifetime(who, lifetimeMinutes);
    await this.get(who, id);
    const expirationTime = new Date(this.clock.now() + minutes * 60_000).toISOString();
    return (await this.api()).patchExpiration(id, expirationTime);
  }

  async delete(who: ServiceCaller, id: string): Promise<void> {
    await this.get(who, id);
    if (!(await (await this.api()).delete(id))) throw notFound(id);
    this.options.onChange?.("deleted");
  }

  /**
   * The service once it serves (`host` set), fails (a condition with a reason it will not get
   * over) or is deleted; or as it is when `timeoutMs` passes. Watched, not polled.
   */
  async waitServing(id: string, timeoutMs = this.waitTimeoutMs, signal?: AbortSignal): Promise<Ephemeron> {
    const e = await (
      await this.api()
    ).waitFor(id, (e) => !e || (servicePhase(e) !== "pending" && servicePhase(e) !== "starting"), timeoutMs, signal);
    if (!e) throw new TempkubeError("not-found", `service ${id} was deleted while waiting for it to serve`);
    return e;
  }

  view(e: Ephemeron): ServiceView {
    const host = e.metadata.annotations?.[HOST_ANNOTATION] ?? null;
    const tls = e.spec.service.tlsSecretName !== undefined;
    return {
      id: e.metadata.name,
      host,
      url: host && this.url(host, tls),
      expirationTime: e.spec.expirationTime,
      tls,
      phase: servicePhase(e),
      conditions: e.status?.conditions ?? [],
      image: e.spec.service.image,
      port: e.spec.service.port,
      createdBy: e.metadata.annotations?.[CREATED_BY_ANNOTATION] ?? null,
      createdAt: e.metadata.creationTimestamp ?? null,
      notificationEmail: e.metadata.annotations?.[NOTIFICATION_EMAIL_ANNOTATION] ?? null,
    };
  }

  private url(host: string, tls: boolean): string {
    const g = this.options.gateway;
    const port = tls ? g?.httpsPort : g?.httpPort;
    const shown = port === undefined || port === (tls ? 443 : 80) ? "" : `:${port}`;
    return `${tls ? "https" : "http"}://${host}${shown}/`;
  }

  private serviceFor(who: ServiceCaller, req: CreateServiceRequest): EphemeronService {
    if ((req.preset === undefined) === (req.service === undefined))
      throw new TempkubeError("invalid-input", "body must name a preset or give a service, not both or neither");
    if (req.preset !== undefined) {
      const preset = this.options.config.presets.get(req.preset);
      // The reference's words exactly (handlers.rs PresetLookup).
      if (!preset) throw new TempkubeError("not-found", `preset ${req.preset} not found`);
      return preset;
    }
    let service: EphemeronService;
    try {
      service = validateService(req.service, "body/service");
    } catch (err) {
      if (err instanceof ServiceSpecError) throw new TempkubeError("invalid-input", err.message);
      throw err;
    }
    // Both reach into the shared services cluster: a Secret of it, and the route's own settings.
    if (!who.admin && service.tlsSecretName !== undefined)
      throw new TempkubeError("forbidden", `${who.label} may not set body/service/tlsSecretName (admin tokens only)`);
    if (!who.admin && service.ingressAnnotations && Object.keys(service.ingressAnnotations).length)
      throw new TempkubeError(
        "forbidden",
        `${who.label} may not set body/service/ingressAnnotations (admin tokens only)`,
      );
    return service;
  }

  private lifetime(who: ServiceCaller, minutes: number): number {
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_SERVICE_MINUTES)
      throw new TempkubeError(
        "invalid-input",
        `lifetime ${minutes} is invalid (lifetimeMinutes is a whole number from 1 to ${MAX_SERVICE_MINUTES})`,
      );
    if (who.maxServiceMinutes !== null && minutes > who.maxServiceMinutes)
      throw new TempkubeError(
        "forbidden",
        `${who.label} may keep services for at most ${who.maxServiceMinutes} minutes (maxServiceMinutes; lifetimeMinutes ${minutes})`,
      );
    return minutes;
  }

  /** The services cluster's API; any failure to have it is a 503 that says so. */
  private async api(): Promise<EphemeronApi> {
    try {
      return await this.options.getApi();
    } catch (err) {
      if (err instanceof TempkubeError && (err.type === "host" || err.type === "setup")) throw err;
      throw new TempkubeError("host", `the services cluster is not available: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private async oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.creating.get(key) ?? Promise.resolve();
    const mine = before.then(work, work);
    const settled = mine.catch(() => undefined);
    this.creating.set(key, settled);
    try {
      return await mine;
    } finally {
      if (this.creating.get(key) === settled) this.creating.delete(key);
    }
  }
}

/** 403 for someone else's service; the ephemeron surface answers it with the reference's "Forbidden". */
export class NotYoursError extends TempkubeError {
  constructor(id: string, who: ServiceCaller) {
    super("forbidden", `service ${id} was not created by ${who.label}`);
  }
}

export function servicePhase(e: Ephemeron): ServicePhase {
  if (e.metadata.deletionTimestamp) return "deleting";
  if (e.metadata.annotations?.[HOST_ANNOTATION]) return "available";
  const conditions = e.status?.conditions ?? [];
  if (conditions.some((c) => c.status === "False" && c.reason && FAILURE_REASONS.has(c.reason))) return "failed";
  return conditions.some((c) => c.type === "PodReady" && c.status === "True") ? "starting" : "pending";
}

/**
 * A create's notification address, checked as the notifications will check it
 * (core/service-notifications.ts): refused with a 400 rather than accepted and never mailed.
 * Only the services API writes this annotation in the services cluster, so it is the one gate.
 */
function notificationEmail(email: unknown): string | undefined {
  if (email === undefined) return undefined;
  if (typeof email !== "string") throw new TempkubeError("invalid-input", "body/notificationEmail must be a string");
  const problem = notificationEmailProblem(email, "body/notificationEmail");
  if (problem) throw new TempkubeError("invalid-input", problem);
  return email;
}

function ownedBy(e: Ephemeron, sub: string): boolean {
  return e.metadata.annotations?.[CREATED_BY_ANNOTATION] === sub;
}

/** The API server's own words for a missing object, as the reference passes them on (GetResource). */
function notFound(id: string): TempkubeError {
  return new TempkubeError("not-found", `ephemerons.qualified.io "${id}" not found`);
}
