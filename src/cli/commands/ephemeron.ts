import type { Command } from "commander";

/** `tempkube ephemeron manifests`: the Ephemeron CRD for any Kubernetes cluster (issue 14). */
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
  $ tempkube ephemeron manifests | kubectl apply -f -`,
    )
    .action(async (opts: { withRole?: boolean }) => {
      const { ephemeronCrd, ephemeronClusterObjects } = await import("../../services/ephemeron-crd.js");
      process.stdout.write(opts.withRole ? ephemeronClusterObjects() : ephemeronCrd());
    });
}
