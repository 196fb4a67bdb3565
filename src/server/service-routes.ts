import type { FastifyInstance } from "fastify";
import { tokenCaller, type CreateServiceRequest, type EphemeralServices } from "../service/ephemeral-services.js";
import { caller } from "./auth.js";
import { routeSchema } from "./route-schema.js";
import { createServiceBodySchema, extendServiceBodySchema, serviceIdParamsSchema, serviceSchema } from "./schemas.js";

type IdParams = { Params: { id: string } };

const tags = ["services"];
const meanings = {
  403: "not allowed for this token: someone else's service, a limit (maxServices, maxServiceMinutes) or an admin-only field",
  404: "no such service, or no such preset",
  503: "the services cluster is not available (it is made on first use); retry later",
};

/**
 * /v1/services: ephemeral services (issue 14) for tempkube tokens — an image and a port for
 * some minutes, served at `<id>.<services domain>` through the gateway. Each token sees its own
 * (admins all); the objects in the services cluster are the record.
 */
export function registerServiceRoutes(app: FastifyInstance, services: EphemeralServices): void {
  app.post<{ Body: CreateServiceRequest & { wait?: boolean }; Querystring: { wait?: boolean } }>(
    "/v1/services",
    routeSchema(
      "Create a service from a preset or a spec; with wait, answer once it serves",
      {
        body: createServiceBodySchema,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { wait: { type: "boolean", description: "as the body's wait" } },
        },
      },
      serviceSchema,
      201,
      tags,
      meanings,
    ),
    async (req, reply) => {
      const { wait, ...request } = req.body;
      let e = await services.create(tokenCaller(caller(req)), request);
      if (wait || req.query.wait) {
        // A client that goes away stops the wait (the service stays: it was asked for).
        const gone = new AbortController();
        reply.raw.once("close", () => gone.abort());
        e = await services.waitServing(e.metadata.name, undefined, gone.signal);
      }
      return reply.status(201).send(services.view(e));
    },
  );

  app.get(
    "/v1/services",
    routeSchema(
      "List your services (an admin: all)",
      {},
      { type: "object", properties: { items: { type: "array", items: serviceSchema } } },
      200,
      tags,
      meanings,
    ),
    async (req) => ({ items: (await services.list(tokenCaller(caller(req)))).map((e) => services.view(e)) }),
  );

  app.get<IdParams>(
    "/v1/services/:id",
    routeSchema("Show a service", { params: serviceIdParamsSchema }, serviceSchema, 200, tags, meanings),
    async (req) => services.view(await services.get(tokenCaller(caller(req)), req.params.id)),
  );

  app.patch<IdParams & { Body: { lifetimeMinutes: number } }>(
    "/v1/services/:id",
    routeSchema(
      "Give a service a new expiry, lifetimeMinutes from now",
      { params: serviceIdParamsSchema, body: extendServiceBodySchema },
      serviceSchema,
      200,
      tags,
      meanings,
    ),
    async (req) =>
      services.view(await services.extend(tokenCaller(caller(req)), req.params.id, req.body.lifetimeMinutes)),
  );

  app.delete<IdParams>(
    "/v1/services/:id",
    routeSchema(
      "Delete a service now, with everything it owns",
      { params: serviceIdParamsSchema },
      { type: "null", description: "deleted" },
      204,
      tags,
      meanings,
    ),
    async (req, reply) => {
      await services.delete(tokenCaller(caller(req)), req.params.id);
      return reply.status(204).send();
    },
  );
}
