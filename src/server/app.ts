import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance } from "fastify";
import type { ClusterService } from "../service/cluster-service.js";
import type { EphemeralServices } from "../service/ephemeral-services.js";
import type { ServiceAuth } from "../services/service-auth.js";
import type { TokenService } from "../service/token-service.js";
import { TempkubeError } from "../util/errors.js";
import { STATUS } from "./error-status.js";
import { parseJsonWithComments } from "../util/jsonc.js";
import { requireBearerToken } from "./auth.js";
import { registerClusterRoutes } from "./cluster-routes.js";
import { registerEphemeronRoutes } from "./ephemeron-routes.js";
import { registerImageRoutes } from "./image-routes.js";
import type { ServiceMetrics } from "./metrics.js";
import { registerServiceRoutes } from "./service-routes.js";
import { registerSmekRoutes } from "./smek-routes.js";
import { registerTokenRoutes } from "./token-routes.js";

/** What the routes call: the application services, and the metrics they are measured by. */
export interface AppParts {
  clusters: ClusterService;
  tokens: TokenService;
  metrics: ServiceMetrics;
  /** Where uploaded image archives are streamed to before loading. */
  uploadsDir: string;
  /** Serve over HTTPS with this certificate and key (PEM). */
  https?: { cert: string; key: string };
  /** More Prometheus text for /metrics (the gateway process's own registry). */
  extraMetrics?: () => Promise<string>;
  /** Ephemeral services (issue 14): /v1/services and the ephemeron-compatible /ephemeron; absent, neither exists. */
  services?: EphemeralServices;
  /** /ephemeron/auth's signer and checker: with `services`, the ephemeron-compatible /ephemeron is served too. */
  serviceAuth?: ServiceAuth;
}

/** The HTTP app: error mapping, body parsing, OpenAPI, authentication, then each resource's routes. */
export async function buildApp({
  clusters,
  tokens,
  metrics,
  uploadsDir,
  https,
  extraMetrics,
  services,
  serviceAuth,
}: AppParts): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    ...(https ? { https } : {}),
    // Messages name the field and the rule: "body/ttlMinutes must be >= 1", "body/colour is not a known field".
    schemaErrorFormatter: (errors, dataVar) =>
      new Error(
        errors
          .map((e) => {
            const field = `${dataVar}${e.instancePath}`;
            const extra = (e.params as { additionalProperty?: string }).additionalProperty;
            return extra ? `${field}/${extra} is not a known field` : `${field} ${e.message ?? "is invalid"}`;
          })
          .join("; "),
      ),
    ajv: {
      customOptions: { allErrors: false, removeAdditional: false, formats: { email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/ } },
    },
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
  app.addContentTypeParser(
    ["application/json", "application/x-www-form-urlencoded", "text/plain"],
    { parseAs: "string" },
    (_req, text, done) => {
      try {
        done(null, parseJsonWithComments(String(text)));
      } catch (err) {
        done(err as Error, undefined);
      }
    },
  );

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
  app.get("/metrics", async (_req, reply) =>
    reply
      .type(metrics.registry.contentType)
      .send((await metrics.registry.metrics()) + (extraMetrics ? await extraMetrics() : "")),
  );

  requireBearerToken(app, tokens);
  registerClusterRoutes(app, clusters);
  registerTokenRoutes(app, tokens);
  registerImageRoutes(app, clusters, uploadsDir);
  registerSmekRoutes(app, clusters);
  if (services) registerServiceRoutes(app, services);
  // The ephemeron-compatible surface authenticates /auth JWTs: it needs their signer.
  if (services && serviceAuth) await registerEphemeronRoutes(app, services, serviceAuth, tokens);
  return app;
}
