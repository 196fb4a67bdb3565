import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { ClusterRecord } from "../core/cluster-record.js";
import { parseLabelPairs } from "../core/labels.js";
import type { TokenIdentity } from "../core/quota.js";
import type { Store } from "../store/store.js";
import { TempkubeError, type ErrorType } from "../util/errors.js";
import { parseJsonWithComments } from "../util/jsonc.js";
import type { ClusterService, CreateClusterRequest } from "./cluster-service.js";
import type { ServiceMetrics } from "./metrics.js";
import { clusterIdParams, clusterView as clusterSchema, createClusterBody, errorView, extendBody, listQuery, waitQuery } from "./schemas.js";
import { registerSmekRoutes } from "./smek-routes.js";
import { registerImageRoutes } from "./image-routes.js";
import { registerTokenRoutes } from "./token-routes.js";

const STATUS: Record<ErrorType, number> = {
  "invalid-input": 400, "not-found": 404, conflict: 409, forbidden: 403, capacity: 429, setup: 503, host: 503, "child-process": 500, runtime: 500, timeout: 504,
};

declare module "fastify" {
  interface FastifyRequest {
    identity?: TokenIdentity;
  }
}

/** The JSON a client sees of a cluster. */
export function clusterView(r: ClusterRecord, endpoint: string | null = null) {
  return {
    id: r.id, name: r.name, phase: r.phase, desired: r.desired, kubernetesVersion: r.spec.kubernetesVersion,
    size: r.spec.size, workers: r.spec.workers, privileged: r.spec.privileged, keep: r.keep,
    notificationEmail: r.notificationEmail, ttlMinutes: r.ttlMinutes, expiresAt: new Date(r.expiresAt).toISOString(),
    createdAt: new Date(r.createdAt).toISOString(), endpoint, labels: r.labels, lastError: r.lastError, phaseTimingsMs: r.timings,
  };
}

/** "team=a,env=ci" → { team: "a", env: "ci" } */
function parseLabelSelector(text: string | undefined): Record<string, string> {
  return parseLabelPairs((text ?? "").split(",").filter(Boolean),
    () => new TempkubeError("invalid-input", `querystring/label must be key=value[,key=value], not "${text}"`));
}

/** The schema of a route: request parts validated, answers documented (errors by status). */
function route(summary: string, parts: Record<string, unknown>, ok: Record<string, unknown> | undefined, okStatus = 200, tags = ["clusters"]) {
  const errors = Object.fromEntries([400, 401, 403, 404, 409, 429].map((code) => [code, { ...errorView, description: ERROR_MEANING[code] }]));
  return { schema: { summary, tags, security: [{ bearer: [] }], ...parts, response: { ...(ok ? { [okStatus]: ok } : {}), ...errors } } };
}

const ERROR_MEANING: Record<number, string> = {
  400: "invalid input; the message names the field and the rule", 401: "no valid bearer token", 403: "not allowed for this token (policy or quota)",
  404: "no such cluster (or not yours)", 409: "not possible in the cluster's current state", 429: "host capacity reached; retry later",
};

export type RouteSchema = typeof route;

export async function buildApp(store: Store, clusters: ClusterService, metrics: ServiceMetrics, uploadsDir: string): Promise<FastifyInstance> {
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

  // The OpenAPI document is generated from the route schemas below, the ones that validate requests.
  // Awaited so its onRoute hook sees every route registered after it.
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "tempkube", version: "1", description: "Throwaway, isolated, real Kubernetes clusters" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
    hideUntagged: true,
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  app.get("/healthz", async () => ({ ok: true }));
  app.get("/metrics", async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  app.addHook("onRequest", async (req: FastifyRequest) => {
    if (req.url === "/healthz" || req.url === "/metrics" || req.url === "/openapi.json") return;
    const header = req.headers.authorization ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    const identity = token ? await store.identify(token) : undefined;
    if (!identity) throw Object.assign(new Error("a valid bearer token is required (Authorization: Bearer <token>)"), { statusCode: 401 });
    req.identity = identity;
  });

  const who = (req: FastifyRequest) => req.identity!;

  type IdParams = { Params: { id: string } };
  type Wait = { Querystring: { wait?: boolean } };

  app.post<{ Body: CreateClusterRequest & { wait?: boolean } }>("/v1/clusters",
    route("Create a cluster (from the warm pool when one of its shape is ready)", { body: createClusterBody }, clusterSchema, 201), async (req, reply) => {
      const { wait, ...spec } = req.body ?? {};
      let record = await clusters.create(who(req), spec);
      if (wait) record = (await clusters.waitSettled(record.id)) ?? record;
      return reply.status(201).send(clusterView(record));
    });

  app.get<{ Querystring: { label?: string } }>("/v1/clusters", route("List your clusters", { querystring: listQuery },
    { type: "object", properties: { items: { type: "array", items: clusterSchema } } }), async (req) =>
    ({ items: (await clusters.list(who(req), parseLabelSelector(req.query.label))).map((r) => clusterView(r)) }));

  app.get<IdParams>("/v1/clusters/:id", route("Show a cluster", { params: clusterIdParams }, clusterSchema), async (req) => {
    const r = await clusters.get(who(req), req.params.id);
    return clusterView(r, await clusters.endpoint(r));
  });

  app.get<IdParams>("/v1/clusters/:id/kubeconfig", route("The cluster's kubeconfig (YAML), for the tenant credential", { params: clusterIdParams },
    { type: "string", description: "kubeconfig YAML" }), async (req, reply) =>
    reply.type("application/yaml").send(await clusters.kubeconfig(who(req), req.params.id)));

  app.post<IdParams & Wait>("/v1/clusters/:id/stop", route("Stop a cluster; its state is kept", { params: clusterIdParams, querystring: waitQuery }, clusterSchema),
    async (req) => clusterView(await settleIf(req.query.wait, await clusters.stop(who(req), req.params.id))));

  app.post<IdParams & Wait>("/v1/clusters/:id/start", route("Start a stopped cluster", { params: clusterIdParams, querystring: waitQuery }, clusterSchema),
    async (req) => clusterView(await settleIf(req.query.wait, await clusters.start(who(req), req.params.id))));

  app.post<IdParams & { Body: { ttlMinutes: number } }>("/v1/clusters/:id/extend", route("Give a cluster a new expiry, counted from now",
    { params: clusterIdParams, body: extendBody }, clusterSchema), async (req) =>
    clusterView(await clusters.extend(who(req), req.params.id, req.body.ttlMinutes)));

  app.delete<IdParams & Wait>("/v1/clusters/:id", route("Terminate a cluster now", { params: clusterIdParams, querystring: waitQuery }, clusterSchema),
    async (req) => clusterView(await settleIf(req.query.wait, await clusters.delete(who(req), req.params.id))));

  registerTokenRoutes(app, store, route);
  registerImageRoutes(app, clusters, uploadsDir, route);
  registerSmekRoutes(app, clusters);

  async function settleIf(wait: boolean | undefined, r: ClusterRecord): Promise<ClusterRecord> {
    return wait ? (await clusters.waitSettled(r.id)) ?? r : r;
  }

  return app;
}
