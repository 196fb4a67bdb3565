import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyInstance } from "fastify";
import { TempkubeError } from "../util/errors.js";
import type { ClusterService } from "../service/cluster-service.js";
import { caller } from "./auth.js";
import { routeSchema } from "./route-schema.js";
import { imageLoadedSchema, imageUploadQuerySchema } from "./schemas.js";

/** Image archives (docker save / OCI tar) uploaded as the raw request body, streamed to disk, never held in memory. */
export const MAX_IMAGE_BYTES = 20 * 2 ** 30;

export function registerImageRoutes(app: FastifyInstance, clusters: ClusterService, uploadsDir: string): void {
  app.addContentTypeParser(["application/x-tar", "application/octet-stream"], (_req, payload, done) =>
    done(null, payload),
  );

  app.post<{ Querystring: { cluster?: string; name?: string } }>(
    "/v1/images",
    routeSchema(
      "Load an image archive (request body: the tar) into one of your running clusters, or for every cluster on the host (admin)",
      { querystring: imageUploadQuerySchema },
      imageLoadedSchema,
      200,
      ["images"],
    ),
    async (req) => {
      const body = req.body as Readable | undefined;
      if (!body || typeof (body as Readable).pipe !== "function") {
        throw new TempkubeError(
          "invalid-input",
          "body must be the image archive, sent as application/x-tar or application/octet-stream",
        );
      }
      const dir = join(uploadsDir, randomBytes(8).toString("hex"));
      const file = join(dir, (req.query.name ?? "image.tar").replace(/(\.tar)?$/, ".tar"));
      await mkdir(dir, { recursive: true });
      try {
        let bytes = 0;
        const limit = new Transform({
          transform(chunk: Buffer, _enc, next) {
            bytes += chunk.length;
            next(
              bytes > MAX_IMAGE_BYTES
                ? new TempkubeError("invalid-input", `image archive larger than ${MAX_IMAGE_BYTES} bytes`)
                : null,
              chunk,
            );
          },
        });
        await pipeline(body, limit, createWriteStream(file));
        if (bytes === 0)
          throw new TempkubeError(
            "invalid-input",
            "body is empty; send the image archive (e.g. curl --data-binary @image.tar)",
          );
        const { images } = await clusters.loadImage(caller(req), file, req.query.cluster);
        return { loaded: req.query.name ?? "image.tar", into: req.query.cluster ?? "every cluster", bytes, images };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
}
