import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { ClusterRecord } from "../core/cluster-record.js";
import { MAX_WORKERS, SIZE_PRESETS } from "../core/cluster-spec.js";
import type { Store, TokenIdentity } from "../store/store.js";
import { TempkubeError, type ErrorType } from "../util/errors.js";
import { parseJsonWithComments } from "../util/jsonc.js";
import { MAX_TTL_MINUTES, type ClusterService, type CreateClusterRequest } from "./cluster-service.js";
import type { ServiceMetrics } from "./metrics.js";
import { registerSmekRoutes } from "./smek-routes.js";

const STATUS: Record<ErrorType, number> = {
  "invalid-input": 400, "not-found": 404, conflict: 409, setup: 503, host: 503, "child-process": 500, runtime: 500, timeout: 504,
};

declare module "fastify" {
  interface FastifyRequest {
    identity?: TokenIdentity;
  }
}

const createBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    kubernetesVersion: { type: "string", minLength: 1 },
    ttlMinutes: { type: "integer", minimum: 1, maximum: MAX_TTL_MINUTES },
    keep: { type: "boolean" },
    notificationEmail: { type: "string", format: "email" },
    privileged: { type: "boolean" },
    size: { type: "string", enum: Object.keys(SIZE_PRESETS) },
    workers: { type: "integer", minimum: 0, maximum: MAX_WORKERS },
    name: { type: "string", maxLength: 63 },
    wait: { type: "boolean" },
  },
} as const;

const extendBody = {
  type: "object",
  additionalProperties: false,
  required: ["ttlMinutes"],
  properties: { ttlMinutes: { type: "integer", minimum: 1, maximum: MAX_TTL_MINUTES } },
} as const;

/** The JSON a client sees of a cluster. */
export function clusterView(r: ClusterRecord) {
  return {
    id: r.id, name: r.name, phase: r.phase, desired: r.desired, kubernetesVersion: r.spec.kubernetesVersion,
    size: r.spec.size, workers: r.spec.workers, privileged: r.spec.privileged, keep: r.keep,
    notificationEmail: r.notificationEmail, ttlMinutes: r.ttlMinutes, expiresAt: new Date(r.expiresAt).toISOString(),
    createdAt: new Date(r.createdAt).toISOString(), lastError: r.lastError, phaseTimingsMs: r.timings,
  };
}


export function buildApp(store: Store, clusters: ClusterService, metrics: ServiceMetrics): FastifyInstance {
  const app = Fastify({
    logger: false,
    // Messages name the field and the rule: "body/ttlMinutes must be >= 1", "body/colour is not a known field".
    schemaErrorFormatter: (errors, dataVar) => new Error(errors.map((e) => {
      const field = `${dataVar}${e.instancePath}`;
      const extra = (e.params as { additionalProperty?: string }).additionalProperty;
      return extra ? `${field}/${extra} is not a known field` : `${field} ${e.message ?? "is invalid"}`;
    }).join("; ")),
    ajv: { customOptions: { allErrors: false, removeAdditional: false, formats: { email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/ } } },
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof TempkubeError) {
      return reply.status(STATUS[err.type]).send({ error: err.type, message: err.message });
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation) return reply.status(400).send({ error: "invalid-input", message: e.message });
    const status = e.statusCode && e.statusCode < 500 ? e.statusCode : 500;
    return reply.status(status).send({ error: status < 500 ? "invalid-input" : "internal", message: e.message });
  });

  // Bodies pasted from API docs carry comments; `curl -d` sends them as form data.
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser(["application/json", "application/x-www-form-urlencoded", "text/plain"], { parseAs: "string" },
    (_req, text, done) => {
      try { done(null, parseJsonWithComments(String(text))); } catch (err) { done(err as Error, undefined); }
    });

  app.get("/healthz", async () => ({ ok: true }));
  app.get("/metrics", async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  app.addHook("onRequest", async (req: FastifyRequest) => {
    if (req.url === "/healthz" || req.url === "/metrics") return;
    const header = req.headers.authorization ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    const identity = token ? await store.identify(token) : undefined;
    if (!identity) throw Object.assign(new Error("a valid bearer token is required (Authorization: Bearer <token>)"), { statusCode: 401 });
    req.identity = identity;
  });

  const who = (req: FastifyRequest) => req.identity!;

  app.post<{ Body: CreateClusterRequest & { wait?: boolean } }>("/v1/clusters", { schema: { body: createBody } }, async (req, reply) => {
    const { wait, ...spec } = req.body ?? {};
    let record = await clusters.create(who(req), spec);
    if (wait) record = (await clusters.waitSettled(record.id)) ?? record;
    return reply.status(201).send(clusterView(record));
  });

  app.get("/v1/clusters", async (req) => ({ items: (await clusters.list(who(req))).map(clusterView) }));

  app.get<{ Params: { id: string } }>("/v1/clusters/:id", async (req) => clusterView(await clusters.get(who(req), req.params.id)));

  app.get<{ Params: { id: string } }>("/v1/clusters/:id/kubeconfig", async (req, reply) =>
    reply.type("application/yaml").send(await clusters.kubeconfig(who(req), req.params.id)));

  app.post<{ Params: { id: string }; Querystring: { wait?: string } }>("/v1/clusters/:id/stop", async (req) =>
    clusterView(await settleIf(req.query.wait, await clusters.stop(who(req), req.params.id))));

  app.post<{ Params: { id: string }; Querystring: { wait?: string } }>("/v1/clusters/:id/start", async (req) =>
    clusterView(await settleIf(req.query.wait, await clusters.start(who(req), req.params.id))));

  app.post<{ Params: { id: string }; Body: { ttlMinutes: number } }>("/v1/clusters/:id/extend", { schema: { body: extendBody } }, async (req) =>
    clusterView(await clusters.extend(who(req), req.params.id, req.body.ttlMinutes)));

  app.delete<{ Params: { id: string }; Querystring: { wait?: string } }>("/v1/clusters/:id", async (req) =>
    clusterView(await settleIf(req.query.wait, await clusters.delete(who(req), req.params.id))));

  registerSmekRoutes(app, clusters);

  async function settleIf(wait: string | undefined, r: ClusterRecord): Promise<ClusterRecord> {
    return wait === "true" ? (await clusters.waitSettled(r.id)) ?? r : r;
  }

  return app;
}
