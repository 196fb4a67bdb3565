import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { newClusterId } from "../core/cluster-spec.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { ArtifactDir } from "../setup/artifact-dir.js";
import { addonBinary, busyboxBinary, kubernetesBinary } from "../setup/artifact-paths.js";
import type { KubernetesRelease } from "../setup/catalogue.js";
import { writeImageArchive } from "../setup/image-archive.js";
import { ensureArtifact } from "../setup/installer.js";
import { run } from "../util/exec.js";
import { TempkubeError } from "../util/errors.js";
import { goEnv } from "../setup/go-source-build.js";
import { cacheDir, logsDir } from "../util/paths.js";
import { progress, seconds } from "../util/progress.js";
import { parseJUnitReport } from "./junit-report.js";
import { buildSuite, SUITE_FILES } from "./suite-build.js";
import { formatSummary, summarize, type ConformanceSummary } from "./summary.js";
import { imagesToBuild, parseImageManifest, TEST_IMAGE_RECIPES, type ImageManifest } from "./test-images.js";

export interface ConformanceOptions {
  release: KubernetesRelease;
  /** Added to the conformance focus: only specs matching both run. */
  focus?: string;
  /** Added to the skip expression ([Serial] is always skipped). */
  skip?: string;
  workers: number;
  resultsDir: string;
  /** ginkgo's --timeout for the whole run. */
  timeout: string;
}

/** Bump when a recipe in test-images.ts changes what it makes: cached archives are rebuilt. */
const IMAGE_RECIPES_REVISION = 3;

export const conformanceRoot = (r: KubernetesRelease) => join(cacheDir(), "conformance", r.version);

/** k8s.io/kubernetes@<version> in the module cache (downloaded if missing). */
async function kubernetesSource(release: KubernetesRelease, logFile: string): Promise<string> {
  const { stdout } = await run("go", ["mod", "download", "-json", `k8s.io/kubernetes@${release.version}`], {
    env: goEnv(false),
    logFile,
    cwd: cacheDir(),
  });
  return (JSON.parse(stdout) as { Dir: string }).Dir;
}

export async function releaseImageManifest(release: KubernetesRelease, logFile: string): Promise<ImageManifest> {
  const source = await kubernetesSource(release, logFile);
  return parseImageManifest(await readFile(join(source, "test/utils/image/manifest.go"), "utf8"));
}

/**
 * e2e.test and the test images' programs of the release, and the images' archives: cached,
 * each built under its own lock (installer.ts ensureArtifact), so two runs never build one twice.
 */
export async function ensureConformanceArtifacts(
  release: KubernetesRelease,
): Promise<{ suiteDir: string; images: { id: string; reference: string; archive: string }[] }> {
  const root = conformanceRoot(release);
  const suite = new ArtifactDir(join(root, "suite"));
  const imagesDir = new ArtifactDir(join(root, "images"));
  await mkdir(logsDir(), { recursive: true });
  const manifest = await releaseImageManifest(release, join(logsDir(), `conformance-${release.version}.log`));
  const agnhostVersion = manifest.get("Agnhost")?.split(":").pop();
  if (!agnhostVersion)
    throw new TempkubeError("setup", `${release.version}'s test/utils/image/manifest.go names no Agnhost image`);
  // The Etcd image's tag is etcd's version and an image revision: "3.6.4-0".
  const etcdTag = manifest.get("Etcd")?.split(":").pop();
  if (!etcdTag)
    throw new TempkubeError("setup", `${release.version}'s test/utils/image/manifest.go names no Etcd image`);
  const etcdVersion = `v${etcdTag.replace(/-\d+$/, "")}`;
  const wanted = imagesToBuild(manifest);
  await ensureArtifact(
    `e2e suite ${release.version} (${SUITE_FILES.join(", ")})`,
    suite,
    {
      name: "conformance-suite",
      version: `${release.version}-agnhost-${agnhostVersion}-etcd-${etcdVersion}`,
      source: "source",
    },
    (out, log) => buildSuite(release, { agnhost: agnhostVersion, etcd: etcdVersion }, out, log),
  );
  await ensureArtifact(
    `conformance test images ${release.version} (${wanted.map((w) => w.reference.split("/").pop()).join(", ")})`,
    imagesDir,
    {
      name: "conformance-images",
      // The references (from the release's manifest) by hash: the version names the build's log file.
      version: `${release.version}-r${IMAGE_RECIPES_REVISION}-${createHash("sha256")
        .update(wanted.map((w) => w.reference).join(","))
        .digest("hex")
        .slice(0, 12)}`,
      source: "local",
    },
    async (out, logFile) => {
      const kubernetesSourceDir = await kubernetesSource(release, logFile);
      for (const { id, reference } of wanted) {
        const spec = await TEST_IMAGE_RECIPES[id]({
          reference,
          kubernetesSource: kubernetesSourceDir,
          agnhost: suite.path("agnhost"),
          nnp: suite.path("nnp"),
          sampleApiserver: suite.path("sample-apiserver"),
          etcd: suite.path("etcd"),
          busyboxBinary: busyboxBinary(),
          corednsBinary: addonBinary("coredns"),
          logFile,
          scratchDir: await mkdtemp(join(out, ".scratch-")),
          agnhostVersion,
        });
        await writeImageArchive(spec, join(out, `${id}.tar`));
      }
      for (const f of await import("node:fs/promises").then((fs) => fs.readdir(out)))
        if (f.startsWith(".scratch-")) await rm(join(out, f), { recursive: true, force: true });
    },
  );
  return {
    suiteDir: suite.root,
    images: wanted.map((w) => ({ ...w, archive: imagesDir.path(`${w.id}.tar`) })),
  };
}

/** The e2e.test command line (flags of test/e2e/framework/test_context.go and ginkgo's). */
export function e2eArgs(o: {
  kubeconfig: string;
  kubectl: string;
  resultsDir: string;
  focus?: string;
  skip?: string;
  timeout: string;
}): string[] {
  // ginkgo ANDs nothing: one --ginkgo.focus is enough when the user's focus is folded into
  // a lookahead-free form: conformance specs whose text also matches the user's expression.
  const focus = o.focus ? `\\[Conformance\\].*(${o.focus})|(${o.focus}).*\\[Conformance\\]` : "\\[Conformance\\]";
  const skip = ["\\[Serial\\]", ...(o.skip ? [o.skip] : [])].join("|");
  return [
    `--kubeconfig=${o.kubeconfig}`,
    "--provider=local",
    `--kubectl-path=${o.kubectl}`,
    `--report-dir=${o.resultsDir}`,
    `--e2e-output-dir=${join(o.resultsDir, "output")}`,
    `--ginkgo.focus=${focus}`,
    `--ginkgo.skip=${skip}`,
    `--ginkgo.timeout=${o.timeout}`,
    "--ginkgo.no-color",
    "--ginkgo.v",
  ];
}

/**
 * Creates a fresh cluster of the release, runs the non-Serial conformance specs against it
 * with its admin kubeconfig, and destroys it whatever happens (an interrupt included).
 */
export async function runConformance(
  o: ConformanceOptions,
): Promise<{ summary: ConformanceSummary; resultsDir: string }> {
  const started = Date.now();
  progress(`conformance: Kubernetes ${o.release.version}; results in ${o.resultsDir}`);
  const { suiteDir, images } = await ensureConformanceArtifacts(o.release);
  await mkdir(o.resultsDir, { recursive: true });

  const dataDir = await mkdtemp("/tmp/tkconf-");
  const runtime = new LocalRuntime({ dataDir, clusterEgress: "none" });
  const loadStarted = Date.now();
  for (const image of images) await runtime.loadImage(image.archive);
  progress(`  ✓ ${images.length} test images loaded into the host registry (${seconds(Date.now() - loadStarted)})`);

  const id = newClusterId();
  let child: ReturnType<typeof spawn> | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    if (child) {
      // ginkgo ends the running spec's cleanup and writes its report on SIGINT; then finally below.
      progress(`conformance: ${signal}; stopping e2e.test, then destroying cluster ${id}`);
      child.kill("SIGINT");
      return;
    }
    // Still creating: a create cannot be cancelled half-way, so destroy undoes whatever it made.
    progress(`conformance: ${signal} while creating cluster ${id}; destroying it`);
    void runtime
      .destroy(id)
      .catch((err: unknown) => progress(`could not destroy cluster ${id}: ${(err as Error).message}`))
      .then(() => rm(dataDir, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Signal listeners do not keep node's event loop alive, and a run waits on children and
  // timers only: without this the process could end with the cluster still there.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    const createStarted = Date.now();
    progress(`conformance: creating cluster ${id} (${o.release.minor}, ${o.workers} worker(s)) in ${dataDir}`);
    const { credentials } = await runtime.provision(
      {
        id,
        kubernetesVersion: o.release.minor,
        size: "1-mid",
        workers: o.workers,
        // The suite labels its namespaces with the Pod Security level each spec needs, as
        // cluster-admin; a baseline default would refuse the privileged ones it asks for.
        privileged: true,
      },
      (step) => progress(`    ${step}`),
    );
    progress(`  ✓ cluster ${id} ready in ${seconds(Date.now() - createStarted)}`);
    if (interrupted) throw new TempkubeError("runtime", "interrupted");
    const kubeconfig = join(o.resultsDir, "kubeconfig");
    await writeFile(kubeconfig, credentials.adminKubeconfig, { mode: 0o600 });
    const args = e2eArgs({
      kubeconfig,
      kubectl: kubernetesBinary(o.release, "kubectl"),
      resultsDir: o.resultsDir,
      focus: o.focus,
      skip: o.skip,
      timeout: o.timeout,
    });
    const log = join(o.resultsDir, "e2e.log");
    progress(`conformance: ${join(suiteDir, "e2e.test")} ${args.map((a) => JSON.stringify(a)).join(" ")}`);
    progress(`conformance: e2e.test output in ${log}`);
    const runStarted = Date.now();
    const code = await runE2e(join(suiteDir, "e2e.test"), args, log, o.resultsDir, (c) => (child = c));
    progress(`conformance: e2e.test exited with ${code} after ${seconds(Date.now() - runStarted)}`);
    const report = join(o.resultsDir, "junit_01.xml");
    const xml = await readFile(report, "utf8").catch(() => {
      throw new TempkubeError("runtime", `e2e.test wrote no report (${report}); its output: ${log}`);
    });
    const summary = summarize(parseJUnitReport(xml));
    const text = formatSummary(summary);
    await writeFile(join(o.resultsDir, "summary.txt"), text);
    process.stdout.write(
      `\nConformance of Kubernetes ${o.release.version} (tempkube local runtime, ${o.workers + 1} node(s)):\n${text}`,
    );
    progress(`conformance: done in ${seconds(Date.now() - started)}`);
    return { summary, resultsDir: o.resultsDir };
  } finally {
    clearInterval(keepAlive);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    progress(`conformance: destroying cluster ${id}`);
    await runtime
      .destroy(id)
      .catch((err: unknown) => progress(`could not destroy cluster ${id}: ${(err as Error).message}`));
    await rm(dataDir, { recursive: true, force: true });
    // The admin kubeconfig's cluster is gone; its credentials go too.
    await rm(join(o.resultsDir, "kubeconfig"), { force: true });
  }
}

/** Runs e2e.test with its output to the log file; lines naming a spec's end also go to the terminal. */
function runE2e(
  binary: string,
  args: string[],
  logFile: string,
  cwd: string,
  onSpawn: (c: ReturnType<typeof spawn>) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(logFile, { flags: "a" });
    const child = spawn(binary, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
    onSpawn(child);
    let pending = "";
    let finished = 0;
    const echo = (chunk: Buffer) => {
      log.write(chunk);
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      // ginkgo -v (reporters/default_reporter.go) ends a spec with "• [12.345 seconds]",
      // "• [FAILED] [..]" or "S [SKIPPED] [..]", after a run of "S" denoters for the specs the
      // filters left out: those ends, counted, go to the terminal; everything to the log.
      for (const raw of lines) {
        const line = raw.replace(/^S+(?=• |S \[)/, "");
        if (/^(• \[|S \[SKIPPED\])/.test(line)) process.stdout.write(`  [${++finished}] ${line.trim()}\n`);
        else if (/^(Will run \d+ of \d+ specs|Ran \d+ of \d+ Specs|PASS|FAIL)\b/.test(line.replace(/^S+/, "")))
          process.stdout.write(`${line.replace(/^S+/, "")}\n`);
      }
    };
    child.stdout!.on("data", echo);
    child.stderr!.on("data", echo);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      log.end();
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}
