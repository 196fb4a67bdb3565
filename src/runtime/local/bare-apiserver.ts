import { killAndWait, spawnTiedToParent } from "../../util/exec.js";
import { freePort } from "../../util/net.js";
import { type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { addonBinary, kubernetesBinary } from "../../setup/artifact-paths.js";
import { renderKubeconfig } from "./kubeconfig.js";
import { KubeApi } from "./kube-api.js";
import { CertificateAuthority, serviceAccountKeyPair } from "./pki.js";
import { waitFor } from "./wait.js";

/**
 * kine + kube-apiserver alone on loopback, from the built binaries: the baseline that
 * `tempkube bench` measures clusters against, and the smallest proof that a release works.
 */
export interface BareApiServerOptions {
  /** kine's SQLite file; kept after stop (by default it lives, and goes, with the scratch dir). */
  datastoreFile?: string;
  /** More kube-apiserver flags (feature gates, runtime config). */
  extraArgs?: string[];
  /** What start() waits for; /readyz by default. */
  readyPath?: string;
}

/**
 * From 1.37 kube-apiserver refuses to start when it advertises a loopback address with the
 * lease endpoint reconciler ("cannot use public IP 127.0.0.1 with endpoint reconciler: ...
 * may not be in the loopback range", pkg/controlplane/instance.go): the bare apiserver, on
 * loopback by design, then writes no endpoints for the `kubernetes` Service (nothing uses
 * them; the datastore template drops Services and endpoints anyway). Earlier minors keep
 * their flags, so their datastore templates stay what they were.
 */
export function loopbackAdvertiseArgs(release: KubernetesRelease): string[] {
  return Number(release.minor.split(".")[1]) >= 37 ? ["--endpoint-reconciler-type=none"] : [];
}

export class BareApiServer implements AsyncDisposable {
  private constructor(
    readonly dir: string,
    readonly kubeconfigPath: string,
    readonly api: KubeApi,
    private readonly processes: ChildProcess[],
  ) {}

  static async start(release: KubernetesRelease, options: BareApiServerOptions = {}): Promise<BareApiServer> {
    const dir = await mkdtemp(join(tmpdir(), "tempkube-bare-"));
    const port = await freePort();
    const ca = await CertificateAuthority.create("bare-ca");
    const serving = await ca.issue({
      commonName: "kube-apiserver",
      usage: "server",
      ipAddresses: ["127.0.0.1"],
      dnsNames: ["localhost"],
    });
    const admin = await ca.issue({ commonName: "admin", organizations: ["system:masters"], usage: "client" });
    const sa = await serviceAccountKeyPair();
    const files: Record<string, string> = {
      "ca.crt": ca.certPem,
      "apiserver.crt": serving.certPem,
      "apiserver.key": serving.keyPem,
      "sa.pub": sa.publicPem,
      "sa.key": sa.privatePem,
    };
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content, { mode: 0o600 });
    const server = `https://127.0.0.1:${port}`;
    const kubeconfigPath = join(dir, "admin.kubeconfig");
    await writeFile(
      kubeconfigPath,
      renderKubeconfig({
        clusterName: "bare",
        contextName: "bare",
        userName: "admin",
        server,
        caPem: ca.certPem,
        certPem: admin.certPem,
        keyPem: admin.keyPem,
      }),
      { mode: 0o600 },
    );
    const socket = join(dir, "kine.sock");
    const launch = (cmd: string, args: string[]) =>
      spawnTiedToParent(cmd, args, { stdio: "ignore" }).on("error", () => undefined);
    const processes = [
      launch(addonBinary("kine"), [
        "--endpoint",
        `sqlite://${options.datastoreFile ?? `${dir}/state.db`}?_journal=WAL&cache=shared`,
        "--listen-address",
        `unix://${socket}`,
        "--metrics-bind-address",
        "0",
      ]),
      launch(kubernetesBinary(release, "kube-apiserver"), [
        `--etcd-servers=unix://${socket}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${port}`,
        "--service-cluster-ip-range=10.96.0.0/16",
        `--client-ca-file=${dir}/ca.crt`,
        `--tls-cert-file=${dir}/apiserver.crt`,
        `--tls-private-key-file=${dir}/apiserver.key`,
        "--service-account-issuer=https://kubernetes.default.svc",
        `--service-account-key-file=${dir}/sa.pub`,
        `--service-account-signing-key-file=${dir}/sa.key`,
        "--authorization-mode=Node,RBAC",
        "--profiling=false",
        ...loopbackAdvertiseArgs(release),
        ...(options.extraArgs ?? []),
      ]),
    ];
    const bare = new BareApiServer(
      dir,
      kubeconfigPath,
      new KubeApi(server, { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem }),
      processes,
    );
    try {
      const readyPath = options.readyPath ?? "/readyz";
      await waitFor(`bare kube-apiserver ${readyPath}`, () => bare.api.ok(readyPath), 120_000, 50);
    } catch (err) {
      await bare.stop();
      throw err;
    }
    return bare;
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map(killAndWait));
    await rm(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  pids(): number[] {
    return this.processes.map((p) => p.pid).filter((p): p is number => typeof p === "number");
  }
}
