import { randomUUID } from "node:crypto";
import type { EphemeronApi } from "../services/ephemeron-api.js";
import {
  HOST_ANNOTATION,
  type Ephemeron,
  type EphemeronCondition,
  type EphemeronConditionType,
} from "../services/ephemeron-types.js";
import { TempkubeError } from "../util/errors.js";

/**
 * The services cluster's Ephemeron objects in memory, for unit tests: what the API server
 * would do with them (names unique, resourceVersion and generation kept, watches told of
 * every change) and what the controller would (serve, fail, expire), on command.
 */
export class FakeEphemeronApi implements EphemeronApi {
  readonly objects = new Map<string, Ephemeron>();
  readonly calls: string[] = [];
  private version = 0;
  private readonly watchers = new Set<(name: string) => void>();
  /** When set, every call fails as an unreachable cluster would. */
  down = false;

  constructor(private readonly now: () => number = Date.now) {}

  async create(e: Ephemeron): Promise<Ephemeron> {
    this.check(`create ${e.metadata.name}`);
    if (this.objects.has(e.metadata.name))
      throw new TempkubeError("conflict", `ephemerons.qualified.io "${e.metadata.name}" already exists`);
    const made: Ephemeron = structuredClone({
      ...e,
      metadata: {
        ...e.metadata,
        uid: randomUUID(),
        generation: 1,
        resourceVersion: String(++this.version),
        creationTimestamp: new Date(this.now()).toISOString(),
      },
    });
    this.objects.set(made.metadata.name, made);
    this.changed(made.metadata.name);
    return structuredClone(made);
  }

  async get(name: string): Promise<Ephemeron | undefined> {
    this.check(`get ${name}`);
    const e = this.objects.get(name);
    return e && structuredClone(e);
  }

  async list(labelSelector?: string): Promise<Ephemeron[]> {
    this.check("list");
    const wanted = (labelSelector ?? "")
      .split(",")
      .filter(Boolean)
      .map((p) => p.split("="));
    return [...this.objects.values()]
      .filter((e) =>
        wanted.every(([k, v]) => (v === undefined ? k in (e.metadata.labels ?? {}) : e.metadata.labels?.[k] === v)),
      )
      .map((e) => structuredClone(e));
  }

  async patchExpiration(name: string, expirationTime: string): Promise<Ephemeron> {
    this.check(`patch ${name}`);
    const e = this.objects.get(name);
    if (!e) throw new TempkubeError("not-found", `ephemerons.qualified.io "${name}" not found`);
    e.spec.expirationTime = expirationTime;
    this.bump(e, true);
    return structuredClone(e);
  }

  async delete(name: string): Promise<boolean> {
    this.check(`delete ${name}`);
    const had = this.objects.delete(name);
    if (had) this.changed(name);
    return had;
  }

  async waitFor(
    name: string,
    done: (e: Ephemeron | undefined) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Ephemeron | undefined> {
    let last = await this.get(name);
    if (done(last)) return last;
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
        signal?.removeEventListener("abort", finish);
        resolve(last);
      };
      const watcher = (changed: string) => {
        if (changed !== name) return;
        const e = this.objects.get(name);
        last = e && structuredClone(e);
        if (done(last)) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      signal?.addEventListener("abort", finish);
      this.watchers.add(watcher);
    });
  }

  /** What the controller does once a request through the route answers 200: conditions True, `host` set. */
  serve(name: string, host: string): void {
    const e = this.mustHave(name);
    e.metadata.annotations = { ...e.metadata.annotations, [HOST_ANNOTATION]: host };
    e.status = {
      observedGeneration: e.metadata.generation,
      conditions: [this.condition("PodReady", "True"), this.condition("Available", "True")],
    };
    this.bump(e);
  }

  /** A condition the controller reports, e.g. PodReady False with reason ImagePullBackOff. */
  report(
    name: string,
    type: EphemeronConditionType,
    status: "True" | "False" | "Unknown",
    reason?: string,
    message?: string,
  ): void {
    const e = this.mustHave(name);
    const others = (e.status?.conditions ?? []).filter((c) => c.type !== type);
    e.status = { ...e.status, conditions: [...others, this.condition(type, status, reason, message)] };
    this.bump(e);
  }

  private condition(
    type: EphemeronConditionType,
    status: EphemeronCondition["status"],
    reason?: string,
    message?: string,
  ): EphemeronCondition {
    return {
      type,
      status,
      lastTransitionTime: new Date(this.now()).toISOString(),
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    };
  }

  private mustHave(name: string): Ephemeron {
    const e = this.objects.get(name);
    if (!e) throw new Error(`no Ephemeron ${name}`);
    return e;
  }

  private bump(e: Ephemeron, specChanged = false): void {
    e.metadata.resourceVersion = String(++this.version);
    if (specChanged) e.metadata.generation = (e.metadata.generation ?? 1) + 1;
    this.changed(e.metadata.name);
  }

  private changed(name: string): void {
    for (const w of [...this.watchers]) w(name);
  }

  private check(call: string): void {
    this.calls.push(call);
    if (this.down) throw new TempkubeError("host", `services cluster: ${call} failed: connect ECONNREFUSED`);
  }
}
