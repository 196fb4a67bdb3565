import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CertificateAuthority } from "../runtime/local/pki.js";
import { startServer, type RunningServer } from "../server/server.js";
import { BIN, tempkube } from "../testing/cli.js";
import { FakeDriver } from "../testing/fakes.js";
import { stopGateway } from "../gateway/gateway-process.js";
import { freePort } from "../util/net.js";
import { unlessRoot } from "../testing/root.js";

const exec = promisify(execFile);

/** What `openssl x509 -fingerprint -sha256` says of a certificate file: the form the server prints. */
async function opensslFingerprint(file: string): Promise<string> {
  const { stdout } = await exec("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", file]);
  return stdout.trim().replace(/^.*Fingerprint=/i, "");
}

/** A CA and a server certificate it signed for 127.0.0.1, as an operator would bring with --tls-cert. */
async function operatorCertificate(dir: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const ca = await CertificateAuthority.create("operator test CA");
  const leaf = await ca.issue({ commonName: "tempkube", ipAddresses: ["127.0.0.1"], usage: "server" });
  const files = { caFile: join(dir, "ca.crt"), certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
  await writeFile(files.caFile, ca.certPem);
  await writeFile(files.certFile, leaf.certPem);
  await writeFile(files.keyFile, leaf.keyPem, { mode: 0o600 });
  return files;
}

/** `tempkube server` for real (local runtime with no warm pool and nothing to adopt: it never touches a cluster), until it says where it listens. */
async function serverProcess(
  args: string[],
  netns?: string,
): Promise<{ child: ChildProcess; log: () => string; url: string; stop(): Promise<void> }> {
  // The gateway the server starts outlives it: ports of the test's own, and stopped with the server.
  const gatewayArgs = ["--gateway-listen", String(await freePort()), "--gateway-http-listen", String(await freePort())];
  const argv = [BIN, "server", "--warm-pool", "0", "--capacity", "1", ...gatewayArgs, ...args];
  const dataDir = args[args.indexOf("--data-dir") + 1];
  const child = netns
    ? spawn("ip", ["netns", "exec", netns, ...argv], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /listening on (\S+?);/.exec(text);
      if (m && /capacity:/.test(text)) resolve(m[1]!);
    };
    child.stderr!.on("data", check);
    void exited.then(() => reject(new Error(`tempkube server exited:\n${text}`)));
  });
  return {
    child,
    log: () => text,
    url,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      if (args.includes("--data-dir")) await stopGateway(dataDir!);
    },
  };
}

describe("the API over HTTPS (fake driver)", () => {
  const driver = new FakeDriver();
  let dir: string;
  let server: RunningServer;
  let token: string;
  let certFile: string;
  let operator: Awaited<ReturnType<typeof operatorCertificate>>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkq-https-"));
    operator = await operatorCertificate(dir);
    // 127.0.0.1 would be plain HTTP; the option forces what a non-loopback --listen chooses.
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver,
      warmPool: 0,
      hostCapacity: 5,
      tls: "self-signed",
    });
    token = (await readFile(server.adminTokenFile, "utf8")).trim();
    certFile = server.tls!.certFile;
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    TEMPKUBE_URL: server.url,
    TEMPKUBE_TOKEN: token,
    TEMPKUBE_CA_FILE: "",
    KUBECONFIG: join(dir, "kube", "config"),
    TEMPKUBE_LOG_LEVEL: "warn",
    ...extra,
  });

  it("serves HTTPS with a self-signed certificate kept in the data dir, whose fingerprint is openssl's", async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(certFile, join(dir, "api-tls", "server.crt"));
    assert.equal(server.tls!.made, "new");
    assert.equal(server.tls!.fingerprint, await opensslFingerprint(certFile));
    const { stdout } = await exec("openssl", [
      "x509",
      "-noout",
      "-ext",
      "subjectAltName,extendedKeyUsage",
      "-in",
      certFile,
    ]);
    assert.match(stdout, /DNS:localhost/);
    assert.match(stdout, /IP Address:127\.0\.0\.1/);
    assert.match(stdout, /TLS Web Server Authentication/);
  });

  it("the CLI lists and creates with --ca-file and with TEMPKUBE_CA_FILE", async () => {
    const listed = await tempkube(["list", "--ca-file", certFile], env());
    assert.equal(listed.code, 0, listed.stderr);
    const flagFirst = await tempkube(["--ca-file", certFile, "token", "whoami"], env());
    assert.equal(flagFirst.code, 0, flagFirst.stderr);
    assert.match(flagFirst.stdout, /^admin/);
    const created = await tempkube(
      ["create", "--ttl", "10m", "--kubeconfig", join(dir, "kc")],
      env({ TEMPKUBE_CA_FILE: certFile }),
    );
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    assert.match(await readFile(join(dir, "kc"), "utf8"), new RegExp(`tempkube-${id}`));
    assert.match((await tempkube(["list"], env({ TEMPKUBE_CA_FILE: certFile }))).stdout, new RegExp(id));
  });

  it("streams an image upload over HTTPS", async () => {
    const id = (
      await tempkube(["create", "--ttl", "10m", "--no-wait"], env({ TEMPKUBE_CA_FILE: certFile }))
    ).stdout.trim();
    await writeFile(join(dir, "app.tar"), randomBytes(3 * 1024 * 1024));
    const loaded = await tempkube(["load-image", join(dir, "app.tar"), "--cluster", id, "--ca-file", certFile], env());
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.ok(driver.calls.includes(`loadImage ${id}`));
  });

  it("without the CA, or with another one, the CLI says which file to pass", async () => {
    const bare = await tempkube(["list"], env());
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /does not trust/);
    assert.match(bare.stderr, /--ca-file <file> or TEMPKUBE_CA_FILE=<file>/);
    assert.match(bare.stderr, /api-tls\/server\.crt/);
    const wrong = await tempkube(["list", "--ca-file", operator.caFile], env());
    assert.notEqual(wrong.code, 0);
    assert.match(
      wrong.stderr,
      new RegExp(`--ca-file ${operator.caFile} is not the certificate \\(or CA\\) of this server`),
    );
    const missing = await tempkube(["list"], env({ TEMPKUBE_CA_FILE: join(dir, "nope.crt") }));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /TEMPKUBE_CA_FILE .*nope\.crt: cannot read it \(ENOENT\)/);
  });

  it("refuses plain HTTP on the TLS port, and the CLI says to use https", async () => {
    const plain = server.url.replace(/^https:/, "http:");
    await assert.rejects(fetch(`${plain}/healthz`));
    const cli = await tempkube(["list"], env({ TEMPKUBE_URL: plain }));
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /use an https:\/\/ TEMPKUBE_URL/);
    // And the other way round: https:// to a plain HTTP server.
    const plainServer = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: await mkdtemp(join(dir, "plain-")),
      driver: new FakeDriver(),
      warmPool: 0,
      hostCapacity: 1,
    });
    try {
      assert.match(plainServer.url, /^http:/);
      const res = await tempkube(
        ["list", "--ca-file", certFile],
        env({ TEMPKUBE_URL: plainServer.url.replace("http:", "https:") }),
      );
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /does not speak HTTPS \(ERR_SSL_WRONG_VERSION_NUMBER\); try an http:\/\/ TEMPKUBE_URL/);
    } finally {
      await plainServer.close();
    }
  });

  it("`curl --cacert … /create | sh -` writes the kubeconfig, with nothing but the script", async () => {
    const work = await mkdtemp(join(dir, "smek-"));
    // sh with an empty environment (PATH aside): the script may rely on nothing from the caller.
    const { stdout } = await exec(
      "sh",
      [
        "-c",
        `curl -sSf --cacert "$CA" -H "Authorization: Bearer $TOKEN" -d '{"notification-email": "dev@example.com"}' "$URL/create" | env -i PATH=/usr/bin:/bin sh -`,
      ],
      { cwd: work, env: { ...process.env, CA: certFile, TOKEN: token, URL: server.url } },
    );
    assert.match(stdout, /kubeconfig written to/);
    const [file] = (await readdir(work)).filter((f) => f.startsWith("kubeconfig-"));
    assert.ok(file, stdout);
    assert.match(await readFile(join(work, file!), "utf8"), /kind: Config/);
    // curl without the certificate is refused, as any client should be.
    await assert.rejects(exec("curl", ["-sSf", `${server.url}/healthz`]), /certificate/);
  });

  it("keeps the certificate across a restart", async () => {
    const before_ = server.tls!.fingerprint;
    await server.close();
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver,
      warmPool: 0,
      hostCapacity: 5,
      tls: "self-signed",
    });
    assert.equal(server.tls!.made, "reused");
    assert.equal(server.tls!.fingerprint, before_);
  });

  it("serves an operator's certificate; clients trust its CA", async () => {
    const given = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: await mkdtemp(join(dir, "given-")),
      driver: new FakeDriver(),
      warmPool: 0,
      hostCapacity: 5,
      tls: { certFile: operator.certFile, keyFile: operator.keyFile },
    });
    try {
      assert.match(given.url, /^https:/);
      assert.equal(given.tls!.fingerprint, await opensslFingerprint(operator.certFile));
      const asAdmin = {
        TEMPKUBE_URL: given.url,
        TEMPKUBE_TOKEN: (await readFile(given.adminTokenFile, "utf8")).trim(),
      };
      const listed = await tempkube(["list", "--ca-file", operator.caFile], env(asAdmin));
      assert.equal(listed.code, 0, listed.stderr);
      const created = await tempkube(
        ["create", "--ttl", "10m", "--no-wait"],
        env({ ...asAdmin, TEMPKUBE_CA_FILE: operator.caFile }),
      );
      assert.equal(created.code, 0, created.stderr);
      assert.notEqual(
        (await tempkube(["list", "--ca-file", certFile], env(asAdmin))).code,
        0,
        "the self-signed one is not its CA",
      );
    } finally {
      await given.close();
    }
  });
});

describe("tempkube server's TLS flags (real process)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkq-srv-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("--tls-cert/--tls-key: HTTPS on loopback, the certificate's fingerprint printed", async () => {
    const op = await operatorCertificate(dir);
    const srv = await serverProcess([
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      join(dir, "data"),
      "--tls-cert",
      op.certFile,
      "--tls-key",
      op.keyFile,
    ]);
    try {
      assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.match(srv.log(), new RegExp(`SHA-256 fingerprint ${await opensslFingerprint(op.certFile)}`));
      const env = {
        TEMPKUBE_URL: srv.url,
        TEMPKUBE_TOKEN: (await readFile(join(dir, "data", "admin-token"), "utf8")).trim(),
        TEMPKUBE_CA_FILE: op.caFile,
      };
      const listed = await tempkube(["list"], env);
      assert.equal(listed.code, 0, listed.stderr);
    } finally {
      await srv.stop();
    }
  });

  it("refuses unreadable, mismatched or lone certificate flags, naming the flag", async () => {
    const op = await operatorCertificate(dir);
    const other = await operatorCertificate(await mkdtemp(join(dir, "other-")));
    const cases: [string[], RegExp][] = [
      [["--tls-cert", op.certFile], /--tls-cert needs --tls-key/],
      [["--tls-cert", join(dir, "nope.crt"), "--tls-key", op.keyFile], /--tls-cert .*nope\.crt: cannot read it/],
      [["--tls-cert", op.certFile, "--tls-key", other.keyFile], /--tls-key .* does not belong to the certificate/],
      [["--tls-cert", op.keyFile, "--tls-key", op.keyFile], /--tls-cert .* is not a PEM certificate/],
      [["--tls-cert", op.certFile, "--tls-key", op.keyFile, "--insecure-http"], /contradict/],
    ];
    for (const [flags, message] of cases) {
      const res = await tempkube(["server", "--listen", "127.0.0.1:0", "--data-dir", join(dir, "bad"), ...flags]);
      assert.equal(res.code, 2, flags.join(" "));
      assert.match(res.stderr, message);
    }
    assert.ok(!existsSync(join(dir, "bad", "admin-token")), "nothing made before the flags are checked");
  });
});

describe(
  "tempkube server on a non-loopback address (in a network namespace of its own)",
  { skip: unlessRoot("a network namespace, so that 0.0.0.0 is not the host's") },
  () => {
    const netns = `tkq-tls-${randomBytes(3).toString("hex")}`;
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "tkq-ns-"));
      await exec("ip", ["netns", "add", netns]);
      await exec("ip", ["-n", netns, "link", "set", "lo", "up"]);
    });
    after(async () => {
      await exec("ip", ["netns", "del", netns]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });
    const inNs = (cmd: string[], env: NodeJS.ProcessEnv = {}) =>
      exec("ip", ["netns", "exec", netns, ...cmd], { env: { ...process.env, ...env } });

    it("0.0.0.0 makes a self-signed certificate, prints where and its fingerprint, and reuses it", async () => {
      const data = join(dir, "data");
      const srv = await serverProcess(["--listen", "0.0.0.0:0", "--data-dir", data], netns);
      let fingerprint: string;
      try {
        assert.match(srv.url, /^https:\/\//);
        const crt = join(data, "api-tls", "server.crt");
        assert.match(srv.log(), new RegExp(`made now, ${crt}; clients trust it with --ca-file ${crt}`));
        fingerprint = await opensslFingerprint(crt);
        assert.match(srv.log(), new RegExp(`SHA-256 fingerprint ${fingerprint}`));
        const port = new URL(srv.url).port;
        const { stdout } = await inNs([BIN, "list", "-o", "json", "--ca-file", crt], {
          TEMPKUBE_URL: `https://127.0.0.1:${port}`,
          TEMPKUBE_TOKEN: (await readFile(join(data, "admin-token"), "utf8")).trim(),
        });
        assert.match(stdout, /\[/);
      } finally {
        await srv.stop();
      }
      const again = await serverProcess(["--listen", "0.0.0.0:0", "--data-dir", data], netns);
      try {
        assert.match(again.log(), new RegExp(`SHA-256 fingerprint ${fingerprint}`));
        assert.doesNotMatch(again.log(), /made now|made again/);
      } finally {
        await again.stop();
      }
      // The "host" gains an address (on a veth pair whose both ends stay inside the namespace):
      // clients dialling it would be refused by the old certificate.
      await exec("ip", ["-n", netns, "link", "add", "tkqa", "type", "veth", "peer", "name", "tkqb"]);
      await exec("ip", ["-n", netns, "addr", "add", "198.51.100.7/24", "dev", "tkqa"]);
      await exec("ip", ["-n", netns, "link", "set", "tkqa", "up"]);
      await exec("ip", ["-n", netns, "link", "set", "tkqb", "up"]);
      const moved = await serverProcess(["--listen", "0.0.0.0:0", "--data-dir", data], netns);
      try {
        assert.match(moved.log(), /self-signed certificate, made again \(it lacked 198\.51\.100\.7\)/);
        const renewed = await opensslFingerprint(join(data, "api-tls", "server.crt"));
        assert.notEqual(renewed, fingerprint);
        assert.match(moved.log(), new RegExp(`SHA-256 fingerprint ${renewed}`));
        const port = new URL(moved.url).port;
        await inNs([
          "curl",
          "-sSf",
          "--cacert",
          join(data, "api-tls", "server.crt"),
          `https://198.51.100.7:${port}/healthz`,
        ]);
      } finally {
        await moved.stop();
      }
    });

    it("--insecure-http gives plain HTTP on 0.0.0.0, with a warning", async () => {
      const data = join(dir, "plain");
      const srv = await serverProcess(["--listen", "0.0.0.0:0", "--data-dir", data, "--insecure-http"], netns);
      try {
        assert.match(srv.url, /^http:\/\//);
        assert.match(srv.log(), /warning: plain HTTP off loopback/);
        const port = new URL(srv.url).port;
        const { stdout } = await inNs(["curl", "-sSf", `http://127.0.0.1:${port}/healthz`]);
        assert.ok(stdout.length > 0);
        assert.ok(!existsSync(join(data, "api-tls")));
      } finally {
        await srv.stop();
      }
    });
  },
);
