import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { newClusterId } from "../../core/cluster-spec.js";
import { defaultRelease } from "../../setup/catalogue.js";
import { ensureTestImage, TEST_IMAGES } from "../../setup/test-images.js";
import { Kubectl } from "../../testing/kubectl.js";
import { unlessRoot } from "../../testing/root.js";
import { ClusterLayout } from "./layout.js";
import { LocalRuntime } from "./local-runtime.js";
import { CertificateAuthority, type KeyPairPem } from "./pki.js";
import { TENANT_GROUP } from "./tenant-guards.js";

/**
 * API aggregation end to end: upstream's sample-apiserver (the server of the conformance test
 * `[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server`),
 * deployed as that test deploys it, with kine instead of etcd beside it, serves
 * wardle.example.com through the cluster's apiserver, and sees the caller's real identity
 * (its audit log says who). And, as an attacker would try it: X-Remote-* headers assert an
 * identity only from the front-proxy CA's client certificate, never from a tenant's or from
 * any certificate of the cluster's CA.
 */
const runtime = new LocalRuntime();
const NS = "wardle";
const WARDLE = "/apis/wardle.example.com/v1alpha1";

interface Tls {
  ca: string;
  /** Absent: the caller authenticates another way (a bearer token in the headers). */
  cert?: string;
  key?: string;
}

/** One HTTPS request with a client certificate and the given headers; the answer's status and JSON. */
function send(
  server: string,
  tls: Tls,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; json: Record<string, any>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server),
      {
        method,
        ...tls,
        timeout: 10_000,
        headers: { accept: "application/json", "content-type": "application/json", ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json: Record<string, any> = {};
          try {
            json = JSON.parse(text) as Record<string, any>;
          } catch {
            /* not JSON: an error text */
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const FORGED = {
  "X-Remote-User": "system:admin",
  "X-Remote-Group": "system:masters",
  "X-Remote-Extra-Scopes": "everything",
};

/** Who the apiserver takes the caller for (SelfSubjectReview, GA since 1.28). */
async function whoAmI(server: string, tls: Tls, headers: Record<string, string>) {
  const res = await send(server, tls, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", headers, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "SelfSubjectReview",
  });
  const user = res.json.status?.userInfo as { username?: string; groups?: string[] } | undefined;
  return { status: res.status, username: user?.username, groups: user?.groups ?? [], text: res.text };
}

function kubeconfigTls(kubeconfig: string): { server: string; tls: Tls } {
  const k = YAML.parse(kubeconfig) as {
    clusters: { cluster: Record<string, string> }[];
    users: { user: Record<string, string> }[];
  };
  const b64 = (s: string) => Buffer.from(s, "base64").toString();
  return {
    server: k.clusters[0].cluster.server,
    tls: {
      ca: b64(k.clusters[0].cluster["certificate-authority-data"]),
      cert: b64(k.users[0].user["client-certificate-data"]),
      key: b64(k.users[0].user["client-key-data"]),
    },
  };
}

function sampleApiServerManifests(serving: KeyPairPem, caBundle: string): string {
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "sample-apiserver-secret", namespace: NS },
      stringData: { "tls.crt": serving.certPem, "tls.key": serving.keyPem },
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "audit", namespace: NS },
      // Who created or read flunders, as the sample apiserver authenticated them.
      data: {
        "policy.yaml": YAML.stringify({
          apiVersion: "audit.k8s.io/v1",
          kind: "Policy",
          omitStages: ["RequestReceived"],
          rules: [{ level: "Metadata", resources: [{ group: "wardle.example.com", resources: ["flunders"] }] }],
        }),
      },
    },
    // The rights upstream's test gives the sample apiserver's ServiceAccount (aggregator.go).
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "sample-apiserver-reader" },
      rules: [
        { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["admissionregistration.k8s.io"], resources: ["*"], verbs: ["get", "list", "watch"] },
        {
          apiGroups: ["flowcontrol.apiserver.k8s.io"],
          resources: ["prioritylevelconfigurations", "flowschemas"],
          verbs: ["get", "list", "watch"],
        },
      ],
    },
    ...[
      ["sample-apiserver-reader", "sample-apiserver-reader"],
      ["wardler:auth-delegator", "system:auth-delegator"],
    ].map(([name, role]) => ({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
      subjects: [{ kind: "ServiceAccount", name: "default", namespace: NS }],
    })),
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "wardler-auth-reader", namespace: "kube-system" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: "extension-apiserver-authentication-reader",
      },
      subjects: [{ kind: "ServiceAccount", name: "default", namespace: NS }],
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "sample-apiserver", namespace: NS },
      spec: {
        replicas: 1,
        selector: { matchLabels: { apiserver: "true" } },
        template: {
          metadata: { labels: { apiserver: "true" } },
          spec: {
            containers: [
              {
                name: "sample-apiserver",
                image: TEST_IMAGES.sampleApiServer,
                args: [
                  "--etcd-servers=http://127.0.0.1:2379",
                  "--tls-cert-file=/apiserver.local.config/certificates/tls.crt",
                  "--tls-private-key-file=/apiserver.local.config/certificates/tls.key",
                  "--audit-policy-file=/audit/policy.yaml",
                  "--audit-log-path=-",
                  "--audit-log-maxage=0",
                  "--audit-log-maxbackup=0",
                ],
                volumeMounts: [
                  { name: "certs", mountPath: "/apiserver.local.config/certificates", readOnly: true },
                  { name: "audit", mountPath: "/audit", readOnly: true },
                ],
                readinessProbe: {
                  httpGet: { scheme: "HTTPS", port: 443, path: "/readyz" },
                  periodSeconds: 1,
                  failureThreshold: 3,
                },
              },
              {
                // The etcd of upstream's test, played by kine on the pod's loopback.
                name: "kine",
                image: TEST_IMAGES.kine,
                args: [
                  "--listen-address=127.0.0.1:2379",
                  "--endpoint=sqlite:///var/lib/kine/state.db?_journal=WAL&cache=shared",
                  "--metrics-bind-address=0",
                ],
                volumeMounts: [{ name: "data", mountPath: "/var/lib/kine" }],
              },
            ],
            volumes: [
              { name: "certs", secret: { secretName: "sample-apiserver-secret" } },
              { name: "audit", configMap: { name: "audit" } },
              { name: "data", emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "sample-api", namespace: NS },
      spec: { selector: { apiserver: "true" }, ports: [{ protocol: "TCP", port: 7443, targetPort: 443 }] },
    },
    {
      apiVersion: "apiregistration.k8s.io/v1",
      kind: "APIService",
      metadata: { name: "v1alpha1.wardle.example.com" },
      spec: {
        service: { namespace: NS, name: "sample-api", port: 7443 },
        group: "wardle.example.com",
        version: "v1alpha1",
        caBundle: Buffer.from(caBundle).toString("base64"),
        groupPriorityMinimum: 2000,
        versionPriority: 200,
      },
    },
  ];
  return objects.map((o) => YAML.stringify(o)).join("---\n");
}

interface AuditEvent {
  kind?: string;
  verb?: string;
  stage?: string;
  objectRef?: { resource?: string; name?: string; namespace?: string };
  user?: { username?: string; groups?: string[]; extra?: Record<string, string[]> };
}

describe("API aggregation, end to end", { skip: unlessRoot("real clusters"), timeout: 15 * 60_000 }, () => {
  const id = `agg${newClusterId().slice(0, 6)}`;
  // The runtime's default data dir (TEMPKUBE_HOME), as LocalRuntime lays it out.
  const layout = () => new ClusterLayout(id);
  let admin: Kubectl;
  let tenant: Kubectl;
  let server = "";
  let tenantTls: Tls;
  let clusterCaPem = "";

  before(async () => {
    for (const old of await runtime.list()) if (old.startsWith("agg")) await runtime.destroy(old);
    const archives = [await ensureTestImage("sampleApiServer"), await ensureTestImage("kine")];
    const made = await runtime.provision({
      id,
      kubernetesVersion: defaultRelease().minor,
      privileged: false,
      size: "1-small",
      workers: 0,
    });
    for (const archive of archives) await runtime.loadImage(archive, id);
    admin = await Kubectl.withKubeconfig(made.credentials.adminKubeconfig);
    tenant = await Kubectl.withKubeconfig(made.credentials.tenantKubeconfig);
    ({ server, tls: tenantTls } = kubeconfigTls(made.credentials.tenantKubeconfig));
    clusterCaPem = tenantTls.ca;
  });

  after(async () => {
    await runtime.destroy(id).catch(() => undefined);
  });

  it("publishes the front-proxy CA, distinct from the cluster's CA, for aggregated servers to trust", async () => {
    const data = JSON.parse(
      await admin.run(["-n", "kube-system", "get", "configmap", "extension-apiserver-authentication", "-o", "json"]),
    ).data as Record<string, string>;
    const frontProxyCa = await readFile(layout().pki("front-proxy-ca.crt"), "utf8");
    assert.equal(data["requestheader-client-ca-file"]?.trim(), frontProxyCa.trim());
    assert.equal(data["requestheader-allowed-names"], '["front-proxy-client"]');
    assert.equal(data["requestheader-username-headers"], '["X-Remote-User"]');
    assert.equal(data["requestheader-group-headers"], '["X-Remote-Group"]');
    assert.equal(data["requestheader-extra-headers-prefix"], '["X-Remote-Extra-"]');
    assert.ok(!data["requestheader-client-ca-file"].includes(clusterCaPem.trim().split("\n")[1]), "not the cluster CA");
  });

  it("X-Remote-* headers assert an identity only from the front-proxy client certificate", async () => {
    // A tenant's own certificate: the headers are ignored, it stays the tenant.
    const asTenant = await whoAmI(server, tenantTls, FORGED);
    assert.equal(asTenant.status, 201, asTenant.text);
    assert.equal(asTenant.username, "tenant");
    assert.ok(!asTenant.groups.includes("system:masters"), asTenant.groups.join(","));

    // A certificate of the cluster's CA named as the front proxy (what an approved CSR to the
    // cluster's signer would give): its CA is not the front-proxy CA, so the headers count for nothing.
    const clusterCa = await CertificateAuthority.load(clusterCaPem, await readFile(layout().pki("ca.key"), "utf8"));
    const lookalike = await clusterCa.issue({ commonName: "front-proxy-client", usage: "client" });
    const asLookalike = await whoAmI(
      server,
      { ca: clusterCaPem, cert: lookalike.certPem, key: lookalike.keyPem },
      FORGED,
    );
    assert.equal(asLookalike.username, "front-proxy-client", asLookalike.text);
    assert.ok(!asLookalike.groups.includes("system:masters"));

    // The front-proxy CA's certificate under another name: not an allowed name, refused outright.
    const frontProxyCa = await CertificateAuthority.load(
      await readFile(layout().pki("front-proxy-ca.crt"), "utf8"),
      await readFile(layout().pki("front-proxy-ca.key"), "utf8"),
    );
    const otherName = await frontProxyCa.issue({ commonName: "someone-else", usage: "client" });
    const asOtherName = await whoAmI(
      server,
      { ca: clusterCaPem, cert: otherName.certPem, key: otherName.keyPem },
      FORGED,
    );
    assert.equal(asOtherName.status, 401, asOtherName.text);

    // The control: the apiserver's own front-proxy certificate does carry an identity in them.
    const proxy = {
      ca: clusterCaPem,
      cert: await readFile(layout().pki("front-proxy-client.crt"), "utf8"),
      key: await readFile(layout().pki("front-proxy-client.key"), "utf8"),
    };
    const asProxy = await whoAmI(server, proxy, { "X-Remote-User": "proxied-user", "X-Remote-Group": "proxied-group" });
    assert.equal(asProxy.username, "proxied-user", asProxy.text);
    assert.ok(asProxy.groups.includes("proxied-group"));

    // Nor can a tenant register an aggregated API of its own (it would receive others' requests).
    const apiService = await tenant.refusal(
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "apiregistration.k8s.io/v1",
        kind: "APIService",
        metadata: { name: "v1.evil.example.com" },
        spec: {
          service: { namespace: "default", name: "evil" },
          group: "evil.example.com",
          version: "v1",
          insecureSkipTLSVerify: true,
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      }),
    );
    assert.match(apiService ?? "tenant: accepted", /apiservices.apiregistration.k8s.io is forbidden/);
  });

  it("a ServiceAccount the tenant made and bound forges no identity with X-Remote-* either, nor registers an APIService", async () => {
    // The most a tenant can hand a ServiceAccount: admin in a namespace (tenant-guards.ts lets it bind admin, edit, view).
    await tenant.run(["-n", "default", "create", "serviceaccount", "forger"]);
    await tenant.run([
      "-n",
      "default",
      "create",
      "rolebinding",
      "forger-admin",
      "--clusterrole=admin",
      "--serviceaccount=default:forger",
    ]);
    const token = (await tenant.run(["-n", "default", "create", "token", "forger"])).trim();
    const bearer = { Authorization: `Bearer ${token}` };
    const asSa = await whoAmI(server, { ca: clusterCaPem }, { ...FORGED, ...bearer });
    assert.equal(asSa.status, 201, asSa.text);
    assert.equal(asSa.username, "system:serviceaccount:default:forger", asSa.text);
    assert.ok(!asSa.groups.includes("system:masters"), asSa.groups.join(","));

    const apiService = await send(
      server,
      { ca: clusterCaPem },
      "POST",
      "/apis/apiregistration.k8s.io/v1/apiservices",
      bearer,
      {
        apiVersion: "apiregistration.k8s.io/v1",
        kind: "APIService",
        metadata: { name: "v1.evil.example.com" },
        spec: {
          service: { namespace: "default", name: "evil" },
          group: "evil.example.com",
          version: "v1",
          insecureSkipTLSVerify: true,
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      },
    );
    assert.equal(apiService.status, 403, apiService.text);
    // Nor may it rewrite the published front-proxy CA that aggregated servers trust.
    const configMap = await send(
      server,
      { ca: clusterCaPem },
      "PATCH",
      "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
      { ...bearer, "content-type": "application/merge-patch+json" },
      { data: { "requestheader-allowed-names": "[]" } },
    );
    assert.equal(configMap.status, 403, configMap.text);
  });

  it("serves the sample apiserver's wardle.example.com, which sees each caller as who they are", async () => {
    const servingCa = await CertificateAuthority.create("sample-apiserver-ca");
    const serving = await servingCa.issue({
      commonName: "sample-api",
      usage: "server",
      dnsNames: [`sample-api.${NS}.svc`, `sample-api.${NS}.svc.cluster.local`],
    });
    await admin.run(["apply", "-f", "-"], sampleApiServerManifests(serving, servingCa.certPem));
    await admin.run(
      ["-n", NS, "rollout", "status", "deployment/sample-apiserver", "--timeout=180s"],
      undefined,
      200_000,
    );

    let discovery = "";
    let lastError = "";
    for (let i = 0; i < 120 && !discovery; i++) {
      try {
        discovery = await admin.run(["get", "--raw", WARDLE]);
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    assert.ok(discovery, `${WARDLE} never answered: ${lastError}`);
    const resources = (JSON.parse(discovery) as { resources: { name: string }[] }).resources.map((r) => r.name);
    assert.ok(resources.includes("flunders"), resources.join(","));

    const flunder = (name: string) =>
      JSON.stringify({ apiVersion: "wardle.example.com/v1alpha1", kind: "Flunder", metadata: { name } });
    await admin.run(["-n", "default", "create", "-f", "-"], flunder("from-admin"));
    assert.equal(
      (await admin.run(["-n", "default", "get", "flunders", "-o", "jsonpath={.items[*].metadata.name}"])).trim(),
      "from-admin",
    );

    // The tenant has no rights on an aggregated group until given some; then it creates one,
    // forging the headers on the way: the apiserver overwrites them with the tenant's identity.
    const refused = await tenant.refusal(["-n", "default", "create", "-f", "-"], flunder("too-early"));
    assert.match(refused ?? "tenant: accepted", /flunders.wardle.example.com is forbidden: User "tenant"/);
    await admin.run(
      ["apply", "-f", "-"],
      [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "Role",
          metadata: { name: "flunders", namespace: "default" },
          rules: [{ apiGroups: ["wardle.example.com"], resources: ["flunders"], verbs: ["create", "get", "list"] }],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "flunders", namespace: "default" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "flunders" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "tenant" }],
        },
      ]
        .map((o) => YAML.stringify(o))
        .join("---\n"),
    );
    let created = { status: 0, text: "" };
    for (let i = 0; i < 20 && created.status !== 201; i++) {
      created = await send(server, tenantTls, "POST", `${WARDLE}/namespaces/default/flunders`, FORGED, {
        apiVersion: "wardle.example.com/v1alpha1",
        kind: "Flunder",
        metadata: { name: "from-tenant" },
      });
      if (created.status !== 201) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(created.status, 201, created.text);

    // What the sample apiserver itself saw, from its audit log.
    const creates = async () => {
      const log = await admin.run(["-n", NS, "logs", "deployment/sample-apiserver", "-c", "sample-apiserver"]);
      return log
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as AuditEvent)
        .filter((e) => e.kind === "Event" && e.verb === "create" && e.stage === "ResponseComplete");
    };
    let events: AuditEvent[] = [];
    for (let i = 0; i < 20 && events.filter((e) => e.objectRef?.name === "from-tenant").length === 0; i++) {
      events = await creates();
      if (events.length < 2) await new Promise((r) => setTimeout(r, 500));
    }
    const byName = (name: string) => events.find((e) => e.objectRef?.name === name)?.user;
    assert.equal(byName("from-admin")?.username, "tempkube-admin", JSON.stringify(events));
    const tenantSeen = byName("from-tenant");
    assert.equal(tenantSeen?.username, "tenant", JSON.stringify(events));
    assert.ok(tenantSeen?.groups?.includes(TENANT_GROUP), JSON.stringify(tenantSeen));
    assert.ok(!tenantSeen?.groups?.includes("system:masters"), JSON.stringify(tenantSeen));
    assert.equal(tenantSeen?.extra?.scopes, undefined, JSON.stringify(tenantSeen));
  });

  it("a cluster made before API aggregation gets its front-proxy files at its next start, and aggregation works", async () => {
    await runtime.stop(id);
    for (const f of ["front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt", "front-proxy-client.key"])
      await rm(layout().pki(f));
    await runtime.start(id);
    const frontProxyCa = await readFile(layout().pki("front-proxy-ca.crt"), "utf8");
    let published = "";
    for (let i = 0; i < 40 && !published.includes(frontProxyCa.trim()); i++) {
      published = await admin.run([
        "-n",
        "kube-system",
        "get",
        "configmap",
        "extension-apiserver-authentication",
        "-o",
        "jsonpath={.data.requestheader-client-ca-file}",
      ]);
      if (!published.includes(frontProxyCa.trim())) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(published.includes(frontProxyCa.trim()), "the new front-proxy CA is published");
    // The sample apiserver's pod came back with the node; its kine kept what it had.
    let names = "";
    let lastError = "";
    for (let i = 0; i < 120 && !names; i++) {
      try {
        names = (
          await admin.run(["-n", "default", "get", "flunders", "-o", "jsonpath={.items[*].metadata.name}"])
        ).trim();
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    assert.ok(names.includes("from-admin"), `flunders after the start: "${names}" ${lastError}`);
    await admin.run(
      ["-n", "default", "create", "-f", "-"],
      JSON.stringify({ apiVersion: "wardle.example.com/v1alpha1", kind: "Flunder", metadata: { name: "after-start" } }),
    );
  });
});
