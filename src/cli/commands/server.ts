import type { Command } from "commander";
import { resolve } from "node:path";
import { DEFAULT_CLUSTER_EGRESS } from "../../core/cluster-egress.js";
import { DEFAULT_WARNING_MS } from "../../core/notifications.js";
import type { ApiTls } from "../../server/api-tls.js";
import {
  DEFAULT_CLUSTER_DOMAIN,
  DEFAULT_GATEWAY_HTTP_PORT,
  DEFAULT_GATEWAY_PORT,
  type GatewayConfig,
} from "../../gateway/gateway-files.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/progress.js";
import { checkedDomain, listenAddress, parseDurationMs } from "../flags.js";
import { SERVICES_CLUSTER_SYNTAX, WARM_POOL_SYNTAX, profileLabel } from "../../core/pool-profiles.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";

export function registerServer(program: Command): void {
  program
    .command("server")
    .description("Run the tempkube service (REST API, lifetime controller) on the local runtime")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:7780")
    .option("--tls-cert <file>", "serve the API over HTTPS with this certificate (PEM; with --tls-key)")
    .option("--tls-key <file>", "the private key of --tls-cert (PEM, unencrypted)")
    .option(
      "--insecure-http",
      "plain HTTP on a non-loopback --listen (default there: HTTPS with a self-signed certificate kept in <data dir>/api-tls)",
    )
    .option(
      "--gateway-listen <[host:]port>",
      "the one port in front of every cluster's apiserver (TLS passed through, routed by SNI <id>.<cluster domain>); host defaults to --listen's",
      String(DEFAULT_GATEWAY_PORT),
    )
    .option(
      "--gateway-http-listen <[host:]port>",
      "HTTP to clusters' LoadBalancer Services, by Host: <service>.<namespace>.<id>.<cluster domain>; host defaults to --listen's",
      String(DEFAULT_GATEWAY_HTTP_PORT),
    )
    .option(
      "--public-address <host>",
      "the name or address other machines reach this host by, put in every kubeconfig (default: --listen's address; for 0.0.0.0 the address of the default route's interface)",
    )
    .option("--cluster-domain <domain>", "clusters are named <id>.<domain> through the gateway", DEFAULT_CLUSTER_DOMAIN)
    .option(
      "--data-dir <dir>",
      "store and cluster data; the same as setting $TEMPKUBE_HOME (default $TEMPKUBE_HOME or /var/lib/tempkube)",
    )
    .option(
      "--cluster-egress <mode>",
      "what clusters may reach outside the host: internet (NAT through the host's default route; never other clusters, the host's own services or link-local addresses) or none",
      DEFAULT_CLUSTER_EGRESS,
    )
    .option(
      "--smtp-url <url>",
      "SMTP server for notification emails, e.g. smtp://user:pass@host:587 (default $TEMPKUBE_SMTP_URL)",
    )
    .option("--mail-from <address>", "sender of notification emails", "tempkube <tempkube@localhost>")
    .option("--webhook-url <url>", "also POST every notification as JSON here")
    .option("--warning-minutes <n>", "how long before expiry the warning goes out", String(DEFAULT_WARNING_MS / 60_000))
    .option(
      "--capacity <n>",
      "clusters running at once on this host (default: what its memory, idle CPU and kernel limits allow; never more than the kernel limits allow)",
    )
    .option(
      "--warm-pool <n|profiles>",
      `clusters kept booted, so a create of their shape takes well under a second: n of the default shape, or profiles ${WARM_POOL_SYNTAX} (below) (default: 1)`,
    )
    .option("--warm-pool-file <yaml>", "the warm pools as a YAML list of {version, size, workers, privileged, count}")
    .option(
      "--services-cluster <shape>",
      `the cluster ephemeral services (/v1/services, /ephemeron) run in, made on first use and kept running: ${SERVICES_CLUSTER_SYNTAX} (default: 1-mid of the default version)`,
    )
    .option(
      "--services-config <yaml>",
      "presets (name → service spec) that /v1/services and /ephemeron create from, and apps (name → key) that /ephemeron/auth accepts; see README, Ephemeral services",
    )
    .option(
      "--services-domain <domain>",
      "services of the services cluster are served at <name>.<domain> through the gateway (default: services.<cluster domain>)",
    )
    .option(
      "--idle-minutes <n>",
      "clusters whose create names no idle time sleep after this many minutes without a connection through the gateway (0: never)",
      "0",
    )
    .option(
      "--freeze-after <duration>",
      "a running cluster with no connection through the gateway for this long, and nothing of the tenant's running in it (pods, Jobs, CronJobs), is frozen: no CPU, memory kept; the next connection thaws it in milliseconds (0: never)",
      "60s",
    )
    .option(
      "--no-compress-frozen",
      "keep frozen clusters' memory as it is; by default it goes to compressed swap in memory (zram, set up at start when the host has no swap): about a quarter of it stays in RAM",
    )
    .option(
      "--database <url>",
      "PostgreSQL store, e.g. postgres://user:pass@host:5432/tempkube (default $TEMPKUBE_DATABASE_URL, else SQLite in the data dir)",
    )
    .addHelpText(
      "after",
      `
On first start it writes an admin token to <data dir>/admin-token (mode 0600).
On loopback the API is plain HTTP unless --tls-cert/--tls-key are given. On any other address it
is HTTPS: with a self-signed certificate made on first start (<data dir>/api-tls/server.crt;
clients pass it as --ca-file or $TEMPKUBE_CA_FILE, curl as --cacert) unless a certificate is given
or --insecure-http says otherwise.
Warm pools: --warm-pool <n> keeps n clusters of the default shape (${DEFAULT_KUBERNETES_MINOR}/1-mid); profiles are
<version>/<size>[+<n>w][+priv][=<count>], comma-separated: +<n>w adds n worker nodes, +priv makes them
privileged, count defaults to 1. A create of exactly that shape (version, size, workers, privileged) is
served at once and its pool refills behind it (2 s later: the new owner's first requests first). Pools count against --capacity, never take its last place,
and give way to users' creates when the host is full. --warm-pool-file: the same as YAML, e.g.
  - {version: "1.34", size: 1-mid, count: 2}
  - {version: "1.33", size: 1-small, workers: 1, privileged: true}
Examples:
  $ sudo bin/tempkube server
  $ sudo bin/tempkube server --warm-pool 1.37/1-mid=2,1.36/1-small,1.37/1-small+1w+priv
  $ curl -H "Authorization: Bearer $(sudo cat /var/lib/tempkube/admin-token)" http://127.0.0.1:7780/v1/clusters
  $ sudo bin/tempkube server --listen 0.0.0.0:7780      # HTTPS, self-signed; prints the certificate's path and fingerprint
  $ TEMPKUBE_URL=https://tk.example:7780 bin/tempkube list --ca-file server.crt
  $ sudo bin/tempkube server --listen 0.0.0.0:7780 --tls-cert /etc/tempkube/tls.crt --tls-key /etc/tempkube/tls.key`,
    )
    .action(
      async (opts: {
        listen: string;
        tlsCert?: string;
        tlsKey?: string;
        insecureHttp?: boolean;
        dataDir?: string;
        clusterEgress: string;
        smtpUrl?: string;
        mailFrom: string;
        webhookUrl?: string;
        warningMinutes: string;
        capacity?: string;
        warmPool?: string;
        warmPoolFile?: string;
        idleMinutes: string;
        freezeAfter: string;
        compressFrozen: boolean;
        servicesCluster?: string;
        servicesDomain?: string;
        servicesConfig?: string;
        database?: string;
        gatewayListen: string;
        gatewayHttpListen: string;
        publicAddress?: string;
        clusterDomain: string;
      }) => {
        // The server and everything it runs: loaded by this command only, never to define it.
        const [
          { startServer },
          { chooseApiTransport, isLoopbackHost },
          { idleMinutesProblem },
          { parseClusterEgress },
          { gatewayServer },
          { describeWarmPools, warmPoolOptions, warmPoolsBeyondCapacity },
          { servicesClusterOption },
        ] = await Promise.all([
          import("../../server/server.js"),
          import("../../server/api-tls.js"),
          import("../../service/cluster-service.js"),
          import("../../runtime/local/host-firewall.js"),
          import("../../gateway/gateway-kubeconfig.js"),
          import("../../server/warm-pool-options.js"),
          import("../../server/services-cluster-options.js"),
        ]);
        const match = /^(.+):(\d+)$/.exec(opts.listen);
        if (!match) throw new TempkubeError("invalid-input", `--listen must be host:port, not "${opts.listen}"`);
        const host = match[1]!.replace(/^\[(.*)\]$/, "$1");
        const transport = chooseApiTransport(host, opts);
        const warningMinutes = Number(opts.warningMinutes);
        if (!Number.isFinite(warningMinutes) || warningMinutes < 0)
          throw new TempkubeError(
            "invalid-input",
            `--warning-minutes must be a number >= 0, not "${opts.warningMinutes}"`,
          );
        const warmPool = await warmPoolOptions(opts.warmPool, opts.warmPoolFile);
        const servicesCluster = servicesClusterOption(opts.servicesCluster);
        const idleMinutes = wholeNumber("--idle-minutes", opts.idleMinutes, 0);
        const idleProblem = idleMinutesProblem(idleMinutes, "--idle-minutes");
        if (idleProblem) throw new TempkubeError("invalid-input", idleProblem);
        const clusterEgress = parseClusterEgress("--cluster-egress", opts.clusterEgress);
        const freezeAfterMs = parseDurationMs(opts.freezeAfter, "--freeze-after");
        const capacity =
          opts.capacity === undefined
            ? undefined
            : await checkedCapacity(wholeNumber("--capacity", opts.capacity, 1), {
                idleClustersFrozen: freezeAfterMs > 0,
                frozenCompressed:
                  freezeAfterMs > 0 &&
                  opts.compressFrozen &&
                  (await (await import("../../host/compressed-swap.js")).compressedSwapPossible()),
              });
        const gateway = {
          listen: listenAddress("--gateway-listen", opts.gatewayListen, host),
          httpListen: listenAddress("--gateway-http-listen", opts.gatewayHttpListen, host),
          publicAddress: opts.publicAddress?.trim() || undefined,
          clusterDomain: checkedDomain(opts.clusterDomain, "--cluster-domain"),
        };
        // Whatever else reads $TEMPKUBE_HOME in this process (the runtime's defaults) sees the same directory.
        if (opts.dataDir) process.env.TEMPKUBE_HOME = resolve(opts.dataDir);
        const server = await startServer({
          host,
          port: Number(match[2]),
          dataDir: opts.dataDir && resolve(opts.dataDir),
          hostCapacity: capacity,
          warmPool,
          // Not given: the default, checked at its first use rather than refusing the start.
          servicesCluster: opts.servicesCluster === undefined ? undefined : (servicesCluster ?? false),
          servicesDomain:
            opts.servicesDomain === undefined ? undefined : checkedDomain(opts.servicesDomain, "--services-domain"),
          // The services API is always there (its cluster is made at the first request); the config adds presets and apps.
          services: {
            config: opts.servicesConfig
              ? await (await import("../../services/presets.js")).loadServicesConfig(resolve(opts.servicesConfig))
              : (await import("../../services/presets.js")).EMPTY_SERVICES_CONFIG,
          },
          idleMinutes,
          freezeAfterMs,
          compressFrozen: opts.compressFrozen,
          clusterEgress,
          gateway,
          tls:
            transport.kind === "self-signed"
              ? "self-signed"
              : transport.kind === "given"
                ? { certFile: resolve(transport.certFile), keyFile: resolve(transport.keyFile) }
                : undefined,
          database: opts.database ?? (process.env.TEMPKUBE_DATABASE_URL || undefined),
          notifications: {
            smtpUrl: opts.smtpUrl ?? process.env.TEMPKUBE_SMTP_URL,
            from: opts.mailFrom,
            webhookUrl: opts.webhookUrl,
            warningMs: warningMinutes * 60_000,
          },
        });
        progress(
          `tempkube server listening on ${server.url}; admin token in ${server.adminTokenFile}; warm pool ${describeWarmPools(warmPool)}`,
        );
        progress(
          servicesCluster
            ? `services: cluster ${profileLabel(servicesCluster)} (made on first use${server.servicesCluster?.clusterId() ? `; ${server.servicesCluster.clusterId()} found` : ""}), served at <name>.${server.servicesDomain}`
            : "services: none (--services-cluster none)",
        );
        const beyond = warmPoolsBeyondCapacity(warmPool, server.hostCapacity);
        if (beyond) progress(`warning: ${beyond}`);
        if (server.gateway)
          progress(
            describeGateway(
              server.gateway,
              gatewayServer({ publicAddress: server.gateway.publicAddress, port: server.gateway.listen.port }),
            ),
          );
        if (server.tls) progress(describeTls(server.tls));
        else if (!isLoopbackHost(host))
          progress("warning: plain HTTP off loopback (--insecure-http): bearer tokens cross the network in clear text");
        progress(
          server.capacityBound
            ? `capacity: ${server.capacityBound}`
            : `capacity: ${server.hostCapacity} clusters (--capacity)`,
        );
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        progress("tempkube server stopping (clusters keep running)");
        await server.close();
      },
    );
}

/** `kubeconfigServer`: the server URL kubeconfigs name (gateway-kubeconfig.ts gatewayServer). */
function describeGateway(g: GatewayConfig, kubeconfigServer: string): string {
  const at = (a: { host: string; port: number }) => `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
  return (
    `gateway: clusters on ${at(g.listen)} (kubeconfigs: ${kubeconfigServer}, ` +
    `tls-server-name <id>.${g.clusterDomain}); LoadBalancer Services on http://${at(g.httpListen)} ` +
    `(Host: <service>.<namespace>.<id>.${g.clusterDomain}); it keeps running when the server stops (tempkube gateway stop)`
  );
}

/** "[host:]port"; the host defaults to the API's (a loopback API keeps its gateway on loopback too). */
/** What a client needs to trust the API's certificate, and to check it was given the right one. */
function describeTls(tls: ApiTls): string {
  const made =
    tls.made === undefined
      ? "certificate"
      : tls.made === "new"
        ? "self-signed certificate, made now,"
        : tls.made === "reused"
          ? "self-signed certificate"
          : `self-signed certificate, made again (${tls.made.renewed}),`;
  const trust =
    tls.made === undefined
      ? "clients trust the CA that signed it (or this file, if self-signed) with --ca-file or $TEMPKUBE_CA_FILE"
      : `clients trust it with --ca-file ${tls.certFile} (or $TEMPKUBE_CA_FILE; curl --cacert ${tls.certFile})`;
  return `TLS: ${made} ${tls.certFile}; ${trust}\nTLS: SHA-256 fingerprint ${tls.fingerprint}`;
}

/**
 * A capacity past what the kernel limits allow promises clusters that fail to boot (issue
 * 15: 44 promised, the 8th failed), so it is refused; past the memory or idle-CPU estimate
 * the clusters boot on an overcommitted host, which an operator may want: a warning.
 */
async function checkedCapacity(
  requested: number,
  holding: import("../../host/host-budgets.js").IdleHolding,
): Promise<number> {
  const [{ describeBound }, { estimateHostCapacity }] = await Promise.all([
    import("../../host/capacity.js"),
    import("../../host/host-budgets.js"),
  ]);
  const estimate = await estimateHostCapacity(holding);
  const limits = estimate.limitsBound;
  if (limits && requested > limits.clusters) {
    throw new TempkubeError(
      "invalid-input",
      `--capacity ${requested} is more than this host's kernel limits allow: ${describeBound(limits)}` +
        (limits.budget.fix ? `; raise it: ${limits.budget.fix}` : ""),
    );
  }
  if (requested > estimate.capacity) {
    progress(
      `warning: --capacity ${requested} is more than this host holds at idle: ${describeBound(estimate.boundBy)}`,
    );
  }
  return requested;
}

function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new TempkubeError("invalid-input", `${flag} must be a whole number >= ${min}, not "${text}"`);
  return n;
}
