import type { Command } from "commander";
import { resolve } from "node:path";
import { dataDir } from "../../util/paths.js";
import { checkedDomain, listenAddress } from "../flags.js";

/**
 * `tempkube ephemeron manifests`: the Ephemeron CRD for any Kubernetes cluster, and
 * `tempkube ephemeron controller`: Ephemerons served on a cluster tempkube does not run (issue 14).
 */
export function registerEphemeron(program: Command): void {
  const group = program.command("ephemeron").description("The Ephemeron custom resource (ephemeral services)");
  group
    .command("manifests")
    .description(
      "Print the Ephemeron CustomResourceDefinition (qualified.io/v1alpha1) as YAML, for kubectl apply -f - on any cluster (tempkube's own clusters have it already)",
    )
    .option("--with-role", "also the ClusterRole tempkube:ephemerons (the rights to manage Ephemerons, to bind)")
    .addHelpText(
      "after",
      `
Examples:
  $ tempkube ephemeron manifests | kubectl apply -f -
On a cluster tempkube does not run, \`tempkube ephemeron controller\` installs these and serves the Ephemerons.`,
    )
    .action(async (opts: { withRole?: boolean }) => {
      const { ephemeronCrd, ephemeronClusterObjects } = await import("../../services/ephemeron-crd.js");
      process.stdout.write(opts.withRole ? ephemeronClusterObjects() : ephemeronCrd());
    });
  group
    .command("controller")
    .description(
      "Serve the Ephemerons of any cluster (one tempkube does not run): installs the CRD and role, runs a gateway on this host and the controller, in the foreground until Ctrl-C",
    )
    .requiredOption("--kubeconfig <file>", "a cluster admin's kubeconfig of that cluster")
    .requiredOption("--domain <domain>", "Ephemerons are served as <name>.<domain> (point *.<domain> at this host)")
    .option("--listen <[host:]port>", "the gateway's HTTP listener", "127.0.0.1:8080")
    .option("--tls-listen <[host:]port>", "its HTTPS listener (host defaults to --listen's)", "8443")
    .option("--node-address <ip>", "where the cluster's NodePorts answer (default: its first Ready node's InternalIP)")
    .option(
      "--data-dir <dir>",
      "the gateway's files (one controller per dir; default <$TEMPKUBE_HOME or /var/lib/tempkube>/ephemeron-controller)",
    )
    .addHelpText(
      "after",
      `
This host must reach the nodes' addresses (kind, minikube, a cluster on its network).
Tenants bind the ClusterRole tempkube:ephemerons to manage Ephemerons there.

Examples:
  $ tempkube ephemeron controller --kubeconfig ~/.kube/config --domain eph.example.test --listen 0.0.0.0:80 --tls-listen 443
  $ curl --resolve web.eph.example.test:80:127.0.0.1 http://web.eph.example.test/`,
    )
    .action(
      async (opts: {
        kubeconfig: string;
        domain: string;
        listen: string;
        tlsListen: string;
        nodeAddress?: string;
        dataDir?: string;
      }) => {
        const http = listenAddress("--listen", opts.listen, "127.0.0.1");
        const tls = listenAddress("--tls-listen", opts.tlsListen, http.host);
        const domain = checkedDomain(opts.domain, "--domain");
        const [{ ForeignController }, { systemClock }, { logger }] = await Promise.all([
          import("../../services/foreign-controller.js"),
          import("../../core/clock.js"),
          import("../../util/log.js"),
        ]);
        const controller = new ForeignController({
          kubeconfig: resolve(opts.kubeconfig),
          domain,
          http,
          tls,
          nodeAddress: opts.nodeAddress,
          dataDir: opts.dataDir ? resolve(opts.dataDir) : resolve(dataDir(), "ephemeron-controller"),
          clock: systemClock,
          log: {
            info: (o, m) => logger.info(o, m),
            warn: (o, m) => logger.warn(o, m),
          },
        });
        const { server, nodeAddress } = await controller.start();
        process.stdout.write(
          `serving the Ephemerons of ${server} (NodePorts on ${nodeAddress}) as http://<name>.${domain}:${http.port} ` +
            `and https://<name>.${domain}:${tls.port} on ${http.host}; Ctrl-C stops\n`,
        );
        await new Promise<void>((done) => {
          const stop = () => {
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            controller.stop().finally(done);
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
        });
      },
    );
}
