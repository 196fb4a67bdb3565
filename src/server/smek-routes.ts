import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ClusterRecord } from "../core/cluster-record.js";
import { DEFAULT_SIZE, DEFAULT_TTL_MINUTES } from "../core/cluster-spec.js";
import { idleMinutesProblem, type ClusterService } from "../service/cluster-service.js";
import { TempkubeError } from "../util/errors.js";
import { parseJsonWithComments } from "../util/jsonc.js";
import { caller } from "./auth.js";

/**
 * The SMEK-style surface: kebab-case fields and that API's defaults, over the same
 * ClusterService as /v1. `/create` answers a shell script, so `curl … | sh -` works.
 */

type Body = Record<string, unknown>;

function body(req: FastifyRequest): Body {
  const raw = req.body;
  const parsed = typeof raw === "string" || Buffer.isBuffer(raw) ? parseJsonWithComments(String(raw)) : (raw ?? {});
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new TempkubeError("invalid-input", "request body must be a JSON object");
  return parsed as Body;
}

const KNOWN_CREATE = [
  "k8s-version",
  "minutes-to-live",
  "keep-cluster",
  "notification-email",
  "enable-privileged",
  "cluster-size",
  "minutes-to-idle",
];

function field<T>(b: Body, name: string, type: "string" | "number" | "boolean", fallback?: T): T {
  const v = b[name];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new TempkubeError("invalid-input", `${name} is required`);
    return fallback;
  }
  if (type === "number" && typeof v === "string" && /^\d+$/.test(v)) return Number(v) as T;
  if (type === "boolean" && (v === "true" || v === "false")) return (v === "true") as T;
  if (typeof v !== type) throw new TempkubeError("invalid-input", `${name} must be a ${type}`);
  return v as T;
}

/** A POSIX shell script that writes the kubeconfig next to the caller and says where. */
export function kubeconfigScript(id: string, kubeconfig: string): string {
  const marker = "TEMPKUBE_KUBECONFIG_EOF";
  return `#!/bin/sh
# tempkube cluster ${id}: writes its kubeconfig to ./kubeconfig-${id}
set -e
umask 077
cat > "kubeconfig-${id}" <<'${marker}'
${kubeconfig.trimEnd()}
${marker}
echo "cluster ${id} is ready; kubeconfig written to $(pwd)/kubeconfig-${id}"
echo "try: kubectl --kubeconfig $(pwd)/kubeconfig-${id} get nodes"
`;
}

/** stopped, sleeping (idle; the next connection wakes it) or running. */
function smekStatus(r: ClusterRecord): string {
  if (r.desired === "stopped" || r.phase === "stopped") return "stopped";
  return r.phase === "sleeping" ? "sleeping" : "running";
}

export function registerSmekRoutes(app: FastifyInstance, clusters: ClusterService): void {
  app.post("/create", async (req, reply) => {
    const b = body(req);
    const unknown = Object.keys(b).filter((k) => !KNOWN_CREATE.includes(k));
    if (unknown.length)
      throw new TempkubeError(
        "invalid-input",
        `unknown field(s): ${unknown.join(", ")}; known: ${KNOWN_CREATE.join(", ")}`,
      );
    const email = field<string>(b, "notification-email", "string");
    const minutes = field<number>(b, "minutes-to-live", "number", DEFAULT_TTL_MINUTES);
    if (!Number.isInteger(minutes) || minutes < 1)
      throw new TempkubeError("invalid-input", "minutes-to-live must be a positive integer");
    const idle = b["minutes-to-idle"] == null ? undefined : field<number>(b, "minutes-to-idle", "number");
    const idleProblem = idle === undefined ? undefined : idleMinutesProblem(idle, "minutes-to-idle");
    if (idleProblem) throw new TempkubeError("invalid-input", idleProblem);
    let record: ClusterRecord = await clusters.create(caller(req), {
      kubernetesVersion: b["k8s-version"] === undefined ? undefined : field<string>(b, "k8s-version", "string"),
      ttlMinutes: minutes,
      keep: field<boolean>(b, "keep-cluster", "boolean", true),
      notificationEmail: email,
      privileged: field<boolean>(b, "enable-privileged", "boolean", false),
      size: field<string>(b, "cluster-size", "string", DEFAULT_SIZE),
      idleMinutes: idle,
    });
    record = (await clusters.waitSettled(record.id)) ?? record;
    if (record.phase !== "running") {
      throw new TempkubeError(
        "runtime",
        `cluster ${record.id} did not become ready (${record.phase}): ${record.lastError ?? "timed out"}`,
      );
    }
    return reply
      .type("text/x-shellscript")
      .send(kubeconfigScript(record.id, await clusters.kubeconfig(caller(req), record.id)));
  });

  app.post("/stop", async (req) => {
    const b = body(req);
    const id = field<string>(b, "cluster-id", "string");
    const force = field<boolean>(b, "force-terminate", "boolean", false);
    const r = await clusters.get(caller(req), id);
    const updated = force || !r.keep ? await clusters.delete(caller(req), id) : await clusters.stop(caller(req), id);
    return { "cluster-id": id, "cluster-status": updated.desired === "terminated" ? "terminated" : "stopped" };
  });

  app.post("/start", async (req) => {
    const id = field<string>(body(req), "cluster-id", "string");
    const r = (await clusters.waitSettled((await clusters.start(caller(req), id)).id))!;
    return { "cluster-id": id, "cluster-status": r.phase === "running" ? "running" : r.phase };
  });

  app.get("/list", async (req) =>
    (await clusters.list(caller(req)))
      .filter((r) => r.phase !== "terminated")
      .map((r) => ({
        "cluster-id": r.id,
        "cluster-status": smekStatus(r),
        "k8s-version": r.spec.kubernetesVersion,
        // Only when the nodes' kubelet is not the control plane's release (a cgroup v1 host).
        ...kubeletField(clusters.kubeletFor(r.spec.kubernetesVersion)),
        "cluster-size": r.spec.size,
        "keep-cluster": r.keep,
        "expires-at": new Date(r.expiresAt).toISOString(),
      })),
  );
}

function kubeletField(kubelet: { version: string } | undefined): { "kubelet-version"?: string } {
  return kubelet ? { "kubelet-version": kubelet.version } : {};
}
