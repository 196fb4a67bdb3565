import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ClusterRecord } from "../core/cluster-record.js";
import { parseLabelPairs } from "../core/labels.js";
import type { ClusterService, CreateClusterRequest } from "../service/cluster-service.js";
import { TempkubeError } from "../util/errors.js";
import { caller } from "./auth.js";
import { routeSchema } from "./route-schema.js";
import {
  clusterIdParamsSchema,
  clusterSchema,
  createClusterBodySchema,
  extendBodySchema,
  followQuerySchema,
  listQuerySchema,
  waitQuerySchema,
} from "./schemas.js";

/**
 * The JSON a client sees of a cluster. `kubelet`: the nodes' kubelet when it is not the
 * control plane's release (ClusterService.kubeletFor), shown only then.
 */
export function clusterView(
  r: ClusterRecord,
  endpoint: string | null = null,
  kubelet?: { version: string; reason: string },
) {
  return {
    id: r.id,
    name: r.name,
    phase: r.phase,
    desired: r.desired,
    kubernetesVersion: r.spec.kubernetesVersion,
    ...(kubelet ? { kubeletVersion: kubelet.version, kubeletReason: kubelet.reason } : {}),
    size: r.spec.size,
    workers: r.spec.workers,
    privileged: r.spec.privileged,
    keep: r.keep,
    notificationEmail: r.notificationEmail,
    ttlMinutes: r.ttlMinutes,
    idleMinutes: r.idleMinutes,
    // Running, with its processes frozen while idle: the next connection through the gateway thaws it.
    frozen: r.phase === "running" && r.frozenAt !== null,
    expiresAt: new Date(r.expiresAt).toISOString(),
    createdAt: new Date(r.createdAt).toISOString(),
    endpoint,
    labels: r.labels,
    lastError: r.lastError,
    phaseTimingsMs: r.timings,
    // Only admins see the server's own clusters; marked, so that nobody takes one for a tenant's.
    ...(r.system ? { system: r.system } : {}),
  };
}

/** "team=a,env=ci" → { team: "a", env: "ci" } */
function parseLabelSelector(text: string | undefined): Record<string, string> {
  return parseLabelPairs(
    (text ?? "").split(",").filter(Boolean),
    () => new TempkubeError("invalid-input", `querystring/label must be key=value[,key=value], not "${text}"`),
  );
}

type IdParams = { Params: { id: string } };
type Wait = { Querystring: { wait?: boolean; follow?: boolean } };

/** /v1/clusters: create, list, show, kubeconfig, stop, start, extend, delete (each may wait until settled). */
export function registerClusterRoutes(app: FastifyInstance, clusters: ClusterService): void {
  const view = (r: ClusterRecord, endpoint: string | null = null) =>
    clusterView(r, endpoint, clusters.kubeletFor(r.spec.kubernetesVersion));
  /** An operation's answer: streamed (`?follow=true`), once settled (`?wait=true`), or the cluster as it is now. */
  async function answer(req: FastifyRequest<Wait>, reply: FastifyReply, r: ClusterRecord) {
    if (req.query.follow) return streamPhases(req, reply, 200, r);
    return view(req.query.wait ? ((await clusters.waitSettled(r.id)) ?? r) : r);
  }

  /**
   * `?follow=true`: the answer is the operation as it goes (NDJSON), so a client shows live
   * progress and gets the kubeconfig in one request instead of polling (issue 15: commands do
   * one request). The status is sent at once; a failure later is a line `{"error": …}`.
   */
  async function streamPhases(req: FastifyRequest, reply: FastifyReply, status: number, r: ClusterRecord) {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(status, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
    const gone = new AbortController();
    res.once("close", () => gone.abort());
    const line = (o: unknown) => {
      if (!res.destroyed) res.write(`${JSON.stringify(o)}\n`);
    };
    try {
      const last = await clusters.follow(r.id, (now) => line({ cluster: view(now) }), gone.signal);
      if (last?.phase === "running" && last.desired === "running")
        line({ kubeconfig: await clusters.kubeconfig(caller(req), r.id) });
    } catch (err) {
      line({ error: (err as Error).message });
    }
    res.end();
  }

  app.post<{ Body: CreateClusterRequest & { wait?: boolean }; Querystring: { follow?: boolean } }>(
    "/v1/clusters",
    routeSchema(
      "Create a cluster (from the warm pool when one of its shape is ready)",
      { body: createClusterBodySchema, querystring: followQuerySchema },
      clusterSchema,
      201,
    ),
    async (req, reply) => {
      const { wait, ...spec } = req.body ?? {};
      let record = await clusters.create(caller(req), spec);
      if (req.query.follow) return streamPhases(req, reply, 201, record);
      if (wait) record = (await clusters.waitSettled(record.id)) ?? record;
      return reply.status(201).send(view(record));
    },
  );

  app.get<{ Querystring: { label?: string } }>(
    "/v1/clusters",
    routeSchema(
      "List your clusters",
      { querystring: listQuerySchema },
      { type: "object", properties: { items: { type: "array", items: clusterSchema } } },
    ),
    async (req) => ({
      items: (await clusters.list(caller(req), parseLabelSelector(req.query.label))).map((r) => view(r)),
    }),
  );

  app.get<IdParams>(
    "/v1/clusters/:id",
    routeSchema("Show a cluster", { params: clusterIdParamsSchema }, clusterSchema),
    async (req) => {
      const r = await clusters.get(caller(req), req.params.id);
      return view(r, await clusters.endpoint(r));
    },
  );

  app.get<IdParams>(
    "/v1/clusters/:id/kubeconfig",
    routeSchema(
      "The cluster's kubeconfig (YAML), for the tenant credential",
      { params: clusterIdParamsSchema },
      { type: "string", description: "kubeconfig YAML" },
    ),
    async (req, reply) => reply.type("application/yaml").send(await clusters.kubeconfig(caller(req), req.params.id)),
  );

  app.post<IdParams & Wait>(
    "/v1/clusters/:id/stop",
    routeSchema(
      "Stop a cluster; its state is kept",
      { params: clusterIdParamsSchema, querystring: waitQuerySchema },
      clusterSchema,
    ),
    async (req, reply) => answer(req, reply, await clusters.stop(caller(req), req.params.id)),
  );

  app.post<IdParams & Wait>(
    "/v1/clusters/:id/start",
    routeSchema(
      "Start a stopped cluster, or wake a sleeping one",
      { params: clusterIdParamsSchema, querystring: waitQuerySchema },
      clusterSchema,
    ),
    async (req, reply) => answer(req, reply, await clusters.start(caller(req), req.params.id)),
  );

  app.post<IdParams & { Body: { ttlMinutes: number } }>(
    "/v1/clusters/:id/extend",
    routeSchema(
      "Give a cluster a new expiry, counted from now",
      { params: clusterIdParamsSchema, body: extendBodySchema },
      clusterSchema,
    ),
    async (req) => view(await clusters.extend(caller(req), req.params.id, req.body.ttlMinutes)),
  );

  app.delete<IdParams & Wait>(
    "/v1/clusters/:id",
    routeSchema(
      "Terminate a cluster now",
      { params: clusterIdParamsSchema, querystring: waitQuerySchema },
      clusterSchema,
    ),
    async (req, reply) => answer(req, reply, await clusters.delete(caller(req), req.params.id)),
  );
}
