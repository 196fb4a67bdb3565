import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { hostname as osHostname } from "node:os";
import { createSecureContext, type SecureContext } from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import { gatewayCaKeyPath, gatewayCaPath, type GatewayPaths } from "./gateway-files.js";
import { HOSTNAME } from "./route-reader.js";

/**
 * The gateway's own CA: made once in `<data dir>/gateway/tls/` (the key 0600), it issues on
 * demand the certificate of each host name whose HttpRoute asks for `tls: "gateway"`. Clients
 * trust the CA (`curl --cacert`), so any service host verifies without a certificate per name
 * being handed out. ECDSA P-256 as the clusters' PKI (runtime/local/pki.ts).
 *
 * The CA never sees a name on its own: the caller (https-termination.ts) asks only for names
 * that have a route, and the name is checked against the DNS pattern here again.
 *
 * A client that trusts it trusts it for the gateway's domains only: the CA carries critical
 * name constraints (RFC 5280 §4.2.1.10) permitting just those DNS subtrees (the cluster domain,
 * and the services domain when it lies outside), so its key could not vouch for any other site
 * even in other hands. A CA whose constraints no longer cover the configured domains is made
 * again (the old one moved aside); one made before constraints existed is kept as it is.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const CA_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
/**
 * Leaf certificates live 90 days (they are made again from memory, so nothing is handed out):
 * Apple platforms refuse TLS server certificates valid longer than 825 days, even from a
 * private CA (support.apple.com/en-us/103769), so the clusters' ten-year leaves would not do.
 */
export const LEAF_VALIDITY_MS = 90 * 24 * 3600 * 1000;
/** A cached leaf is made again once it has less than this left. */
const LEAF_RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
/** Leaves kept in memory; only names with a route get one, so this bounds memory, not abuse. */
const MAX_CACHED_LEAVES = 4096;

/** Whether `name` is `domain` or a name under it (DNS names compare case-insensitively). */
export function withinDomain(name: string, domain: string): boolean {
  const n = name.toLowerCase();
  const d = domain.toLowerCase().replace(/^\.|\.$/g, "");
  return n === d || n.endsWith(`.${d}`);
}

/** The domains to permit: no duplicates, none inside another (it is covered already), in order. */
export function permittedDomains(domains: string[]): string[] {
  const unique = [...new Set(domains.map((d) => d.toLowerCase().replace(/^\.|\.$/g, "")))].filter(Boolean);
  return unique.filter((d) => !unique.some((other) => other !== d && withinDomain(d, other)));
}

/** The DNS subtrees a CA certificate permits, or undefined when it has no name constraints. */
function permittedDnsSubtrees(cert: x509.X509Certificate): string[] | undefined {
  const ext = cert.getExtension(id_ce_nameConstraints);
  if (!ext) return undefined;
  const constraints = AsnConvert.parse(ext.value, NameConstraints);
  return Array.from(constraints.permittedSubtrees ?? [], (t) => t.base.dNSName ?? "").filter(Boolean);
}

function serial(): string {
  // Positive (RFC 5280 §4.1.2.2): the first hex digit below 8.
  return randomBytes(16)
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

function escapeDn(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, "\\$1");
}

export class GatewayCa {
  private readonly leaves = new Map<string, { context: Promise<SecureContext>; renewAt: number }>();

  private constructor(
    readonly certPem: string,
    private readonly cert: x509.X509Certificate,
    private readonly key: CryptoKey,
    /** The DNS subtrees its constraints permit; undefined for a CA made before it had any. */
    readonly permitted: string[] | undefined,
  ) {}

  /**
   * The CA in `paths.tlsDir`, made when there is none. One that cannot be used (unreadable,
   * the key not the certificate's, expired) is moved aside (`ca.crt.broken-<time>`) and made
   * again; `made` says which, for the log. Each file is written aside and renamed into place,
   * the key first: a certificate in place always has its key beside it, and a crash between
   * the two leaves a key alone, which the next start makes again.
   */
  static async ensure(
    paths: GatewayPaths,
    domains: string[],
  ): Promise<{ ca: GatewayCa; made: "new" | "reused" | { replaced: string } }> {
    const wanted = permittedDomains(domains);
    if (wanted.length === 0) throw new Error("the gateway CA needs at least one domain to issue for");
    let found = await GatewayCa.load(paths);
    if (found instanceof GatewayCa) {
      const permitted = found.permitted;
      const uncovered = permitted ? wanted.filter((d) => !permitted.some((p) => withinDomain(d, p))) : [];
      if (uncovered.length === 0) return { ca: found, made: "reused" };
      found = {
        broken: `its name constraints (${permitted!.join(", ")}) do not cover ${uncovered.join(", ")}: clients must trust the new one`,
      };
    }
    const certFile = gatewayCaPath(paths);
    const keyFile = gatewayCaKeyPath(paths);
    let made: "new" | { replaced: string } = "new";
    if (found !== "missing") {
      made = { replaced: found.broken };
      const aside = `.broken-${Date.now()}`;
      for (const f of [certFile, keyFile])
        await rename(f, `${f}${aside}`).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "ENOENT") throw err;
        });
    }
    await mkdir(paths.tlsDir, { recursive: true, mode: 0o755 });
    const { certPem, keyPem } = await GatewayCa.make(wanted);
    const tmp = `.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(`${keyFile}${tmp}`, keyPem, { mode: 0o600 });
    await chmod(`${keyFile}${tmp}`, 0o600);
    await writeFile(`${certFile}${tmp}`, certPem, { mode: 0o644 });
    await rename(`${keyFile}${tmp}`, keyFile);
    await rename(`${certFile}${tmp}`, certFile);
    const ca = await GatewayCa.load(paths);
    if (!(ca instanceof GatewayCa))
      throw new Error(
        `the gateway CA just made in ${paths.tlsDir} cannot be used: ${ca === "missing" ? "missing" : ca.broken}`,
      );
    return { ca, made };
  }

  /** The CA as stored, "missing", or why it cannot be used. */
  static async load(paths: GatewayPaths): Promise<GatewayCa | "missing" | { broken: string }> {
    const certFile = gatewayCaPath(paths);
    const keyFile = gatewayCaKeyPath(paths);
    let certPem: string;
    let keyPem: string;
    try {
      [certPem, keyPem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === "ENOENT") {
        const either = await Promise.all(
          [certFile, keyFile].map((f) =>
            readFile(f).then(
              () => f,
              () => undefined,
            ),
          ),
        );
        const present = either.filter(Boolean);
        return present.length === 0 ? "missing" : { broken: `${present.join(" and ")} without its pair` };
      }
      return { broken: `cannot read it: ${e.code ?? e.message}` };
    }
    try {
      const node = new X509Certificate(certPem);
      if (!node.ca) return { broken: `${certFile} is not a CA certificate` };
      if (!node.checkPrivateKey(createPrivateKey(keyPem)))
        return { broken: `${keyFile} is not the key of ${certFile}` };
      if (Date.parse(node.validTo) < Date.now() + LEAF_VALIDITY_MS)
        return { broken: `${certFile} expires ${node.validTo}, before a certificate it issued would` };
      const key = await webcrypto.subtle.importKey("pkcs8", x509.PemConverter.decode(keyPem)[0], ALG, false, ["sign"]);
      // A key left readable by a copy or an old umask is made private again.
      await chmod(keyFile, 0o600);
      const cert = new x509.X509Certificate(certPem);
      return new GatewayCa(certPem, cert, key as unknown as CryptoKey, permittedDnsSubtrees(cert));
    } catch (err) {
      return { broken: `cannot parse it: ${(err as Error).message}` };
    }
  }

  private static async make(domains: string[]): Promise<{ certPem: string; keyPem: string }> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      // The host's name in it: a user trusting CAs of several tempkube hosts can tell them apart.
      name: `CN=${escapeDn(`tempkube gateway CA on ${osHostname() || "localhost"}`.slice(0, 64))}`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + CA_VALIDITY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        // pathLen 0: it signs leaves only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        // Critical, so a client that cannot check it refuses the CA rather than ignoring it.
        new x509.Extension(
          id_ce_nameConstraints,
          true,
          AsnConvert.serialize(
            new NameConstraints({
              permittedSubtrees: new GeneralSubtrees(
                domains.map((d) => new GeneralSubtree({ base: new GeneralName({ dNSName: d }) })),
              ),
            }),
          ),
        ),
      ],
    });
    const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as webcrypto.CryptoKey);
    return { certPem: cert.toString("pem"), keyPem: x509.PemConverter.encode(der, "PRIVATE KEY") };
  }

  /** A server certificate for exactly this host name (PEM), valid LEAF_VALIDITY_MS from now. */
  async issue(hostname: string): Promise<{ certPem: string; keyPem: string }> {
    if (!HOSTNAME.test(hostname)) throw new Error(`not a DNS host name: ${JSON.stringify(hostname)}`);
    if (this.permitted && !this.permitted.some((d) => withinDomain(hostname, d)))
      throw new Error(`${hostname} is outside the domains this CA may vouch for (${this.permitted.join(", ")})`);
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      // A CN is at most 64 characters (RFC 5280 upper bound); clients match the SAN anyway.
      subject: `CN=${escapeDn(hostname.length <= 64 ? hostname : "tempkube gateway service")}`,
      issuer: this.cert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + LEAF_VALIDITY_MS),
      signingKey: this.key,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert, false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: "dns", value: hostname }], false),
      ],
    });
    const der = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as webcrypto.CryptoKey);
    return { certPem: cert.toString("pem"), keyPem: x509.PemConverter.encode(der, "PRIVATE KEY") };
  }

  /**
   * The TLS context serving this name's certificate: issued at the first handshake for it, then
   * kept (at most MAX_CACHED_LEAVES names, least recently used dropped) until a month before
   * it expires. Concurrent handshakes for a new name share one issuance.
   */
  contextFor(hostname: string): Promise<SecureContext> {
    const hit = this.leaves.get(hostname);
    if (hit && Date.now() < hit.renewAt) {
      this.leaves.delete(hostname);
      this.leaves.set(hostname, hit);
      return hit.context;
    }
    const entry = {
      context: this.issue(hostname).then(({ certPem, keyPem }) => createSecureContext({ cert: certPem, key: keyPem })),
      renewAt: Date.now() + LEAF_VALIDITY_MS - LEAF_RENEW_BEFORE_MS,
    };
    this.leaves.delete(hostname);
    this.leaves.set(hostname, entry);
    entry.context.catch(() => {
      if (this.leaves.get(hostname) === entry) this.leaves.delete(hostname);
    });
    for (const name of this.leaves.keys()) {
      if (this.leaves.size <= MAX_CACHED_LEAVES) break;
      this.leaves.delete(name);
    }
    return entry.context;
  }
}
