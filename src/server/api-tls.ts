import { createPrivateKey, webcrypto, X509Certificate } from "node:crypto";
import { BlockList, isIP } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { ADDRESS_PLAN } from "../runtime/local/network.js";
import { TempkubeError } from "../util/errors.js";

/**
 * How the REST/SMEK API is served. Bearer tokens travel in every request, so off loopback the
 * API speaks HTTPS unless the operator says otherwise: with their certificate, else a
 * self-signed one made once and kept in the data dir (its fingerprint printed, so a client can
 * check what it was given).
 */
export type ApiTransport =
  { kind: "http" } | { kind: "given"; certFile: string; keyFile: string } | { kind: "self-signed" };

export interface ApiTransportFlags {
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
}

/** A certificate and key the server presents, and what to tell clients about it. */
export interface ApiTls {
  certPem: string;
  keyPem: string;
  /** The file clients give as --ca-file (for a certificate signed by a CA: the CA's file instead). */
  certFile: string;
  /** SHA-256 of the certificate's DER, "AA:BB:…" as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
  /** For the self-signed certificate: whether it was made now, kept, or made again (and why). */
  made?: "new" | "reused" | { renewed: string };
}

/** Loopback only: 127.0.0.0/8, ::1 (also as ::ffff:127.x) and the name localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.replace(/^::ffff:/, "");
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** The pure choice: listen address and flags → plain HTTP, the given certificate, or the self-signed one. */
export function chooseApiTransport(listenHost: string, flags: ApiTransportFlags): ApiTransport {
  if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey))
    throw new TempkubeError(
      "invalid-input",
      `${flags.tlsCert ? "--tls-cert" : "--tls-key"} needs ${flags.tlsCert ? "--tls-key" : "--tls-cert"} as well: give both or neither`,
    );
  if (flags.tlsCert && flags.tlsKey) {
    if (flags.insecureHttp)
      throw new TempkubeError(
        "invalid-input",
        "--insecure-http and --tls-cert/--tls-key contradict each other: choose one",
      );
    return { kind: "given", certFile: flags.tlsCert, keyFile: flags.tlsKey };
  }
  if (flags.insecureHttp || isLoopbackHost(listenHost)) return { kind: "http" };
  return { kind: "self-signed" };
}

/** Node prints the same "AA:BB:…" form as openssl. */
export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** The operator's certificate and key, checked here so that a mistake names the flag rather than failing in the TLS stack. */
export async function loadGivenCertificate(certFile: string, keyFile: string): Promise<ApiTls> {
  const read = (flag: string, file: string) =>
    readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
      throw new TempkubeError("invalid-input", `${flag} ${file}: cannot read it (${err.code ?? err.message})`);
    });
  const certPem = await read("--tls-cert", certFile);
  const keyPem = await read("--tls-key", keyFile);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new TempkubeError("invalid-input", `--tls-cert ${certFile} is not a PEM certificate`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new TempkubeError(
      "invalid-input",
      `--tls-key ${keyFile} is not a PEM private key (an encrypted key needs decrypting first)`,
    );
  }
  if (!cert.checkPrivateKey(key))
    throw new TempkubeError(
      "invalid-input",
      `--tls-key ${keyFile} does not belong to the certificate in --tls-cert ${certFile}`,
    );
  return { certPem, keyPem, certFile, fingerprint: cert.fingerprint256 };
}

export interface HostNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * Names a client may use for this host: localhost, loopback, the host name and every interface
 * address except link-local ones (they need a zone to be dialled, and can change) and those of
 * tempkube's own cluster bridges (`excluded`: they come and go with clusters, and no other
 * machine routes to them; a certificate made again at every cluster start would be useless).
 */
export function hostNames(excluded: (address: string) => boolean = inAddressPlan): HostNames {
  const ips = new Set(["127.0.0.1", "::1"]);
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) {
      if (a.internal || /^fe[89ab]/i.test(a.address) || a.address.startsWith("169.254.")) continue;
      if (!excluded(a.address)) ips.add(a.address);
    }
  const dns = new Set(["localhost"]);
  const name = hostname();
  if (name && !isIP(name)) dns.add(name);
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}

const PLAN = new BlockList();
for (const cidr of ADDRESS_PLAN) {
  const [net, bits] = cidr.split("/");
  PLAN.addSubnet(net!, Number(bits), "ipv4");
}

/** An address tempkube gives out on this host (cluster bridges, nodes, the registry on lo). */
export function inAddressPlan(address: string): boolean {
  return isIP(address) === 4 && PLAN.check(address, "ipv4");
}

/** The host's names, and the one --listen gives when it is a particular name or address (not 0.0.0.0 or ::). */
export function withListenHost(names: HostNames, listenHost: string): HostNames {
  const host = listenHost.replace(/^\[(.*)\]$/, "$1");
  if (host === "0.0.0.0" || host === "::" || host === "") return names;
  if (isIP(host))
    return names.ipAddresses.some((a) => canonicalIp(a) === canonicalIp(host))
      ? names
      : { ...names, ipAddresses: [...names.ipAddresses, host] };
  return names.dnsNames.includes(host.toLowerCase())
    ? names
    : { ...names, dnsNames: [...names.dnsNames, host.toLowerCase()] };
}

/** The names in `wanted` that the certificate does not carry as SANs. */
export function missingNames(certPem: string, wanted: HostNames): string[] {
  const san = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension);
  const have = new Set(
    (san?.names.items ?? []).map((n) => (n.type === "ip" ? canonicalIp(n.value) : n.value.toLowerCase())),
  );
  return [
    ...wanted.dnsNames.filter((d) => !have.has(d.toLowerCase())),
    ...wanted.ipAddresses.filter((ip) => !have.has(canonicalIp(ip))),
  ];
}

/** One spelling per IPv6 address (`fd00::2` and `fd00:0:0:0:0:0:0:2` are the same SAN). */
function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

/**
 * A self-signed server certificate (ECDSA P-256, like the clusters' PKI in runtime/local/pki.ts).
 * Not a CA: clients trust this very certificate (`--ca-file`, `curl --cacert`), which OpenSSL and
 * Go accept for a self-signed certificate in the trust store.
 */
export async function makeSelfSigned(names: HostNames): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString("hex")
      .replace(/^[89a-f]/, "1"),
    name: `CN=tempkube API on ${(names.dnsNames.find((d) => d !== "localhost") ?? "localhost").replace(/([,+"\\<>;=])/g, "\\$1")}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + TEN_YEARS_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [
          ...names.dnsNames.map((value) => ({ type: "dns" as const, value })),
          ...names.ipAddresses.map((value) => ({ type: "ip" as const, value })),
        ],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as webcrypto.CryptoKey);
  return { certPem: cert.toString("pem"), keyPem: x509.PemConverter.encode(der, "PRIVATE KEY") };
}

/** Where the self-signed certificate lives: <data dir>/api-tls/server.crt and server.key (0600). */
export function selfSignedFiles(dataDir: string): { dir: string; certFile: string; keyFile: string } {
  const dir = join(dataDir, "api-tls");
  return { dir, certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
}

/**
 * The self-signed certificate: kept across restarts (clients were given it), made again only
 * when it is missing, unreadable, or lacks one of the host's current names (say a new
 * interface address), since clients dialling that name would be refused.
 */
export async function selfSignedCertificate(dataDir: string, names: HostNames = hostNames()): Promise<ApiTls> {
  const files = selfSignedFiles(dataDir);
  let made: ApiTls["made"] = "new";
  const existing = await Promise.all([readFile(files.certFile, "utf8"), readFile(files.keyFile, "utf8")]).catch(
    () => undefined,
  );
  if (existing) {
    const [certPem, keyPem] = existing;
    let missing: string[] | undefined;
    try {
      if (new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem)))
        missing = missingNames(certPem, names);
    } catch {
      /* unreadable: made again below */
    }
    if (missing?.length === 0)
      return { certPem, keyPem, certFile: files.certFile, fingerprint: fingerprintOf(certPem), made: "reused" };
    made = { renewed: missing ? `it lacked ${missing.join(", ")}` : `${files.certFile} or its key was unreadable` };
  }
  const { certPem, keyPem } = await makeSelfSigned(names);
  // The certificate is public (local users pass it as --ca-file); the key alone is private.
  await mkdir(files.dir, { recursive: true, mode: 0o755 });
  // Each written aside and renamed: a crash leaves whole files (a key and certificate that do
  // not match at worst, which the next start makes again).
  await writeFile(`${files.keyFile}.new`, keyPem, { mode: 0o600 });
  await chmod(`${files.keyFile}.new`, 0o600);
  await writeFile(`${files.certFile}.new`, certPem, { mode: 0o644 });
  await rename(`${files.keyFile}.new`, files.keyFile);
  await rename(`${files.certFile}.new`, files.certFile);
  return { certPem, keyPem, certFile: files.certFile, fingerprint: fingerprintOf(certPem), made };
}
