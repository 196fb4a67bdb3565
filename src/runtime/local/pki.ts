import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

/**
 * Per-cluster PKI generated in-process (ECDSA P-256: fast, no openssl subprocesses).
 * Every certificate is signed by the cluster's own CA; nothing is shared between clusters.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: "server" | "client" | "both";
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

function subjectName(commonName: string, organizations: string[] = []): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;=])/g, "\\$1");
  return [`CN=${esc(commonName)}`, ...organizations.map((o) => `O=${esc(o)}`)].join(", ");
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

export class CertificateAuthority {
  private constructor(
    readonly cert: x509.X509Certificate,
    private readonly key: CryptoKey,
    readonly keyPem: string,
  ) {}

  static async create(commonName: string): Promise<CertificateAuthority> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: subjectName(commonName),
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + TEN_YEARS_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new CertificateAuthority(cert, keys.privateKey, await exportKey(keys.privateKey));
  }

  static async load(certPem: string, keyPem: string): Promise<CertificateAuthority> {
    const cert = new x509.X509Certificate(certPem);
    const key = await webcrypto.subtle.importKey("pkcs8", x509.PemConverter.decode(keyPem)[0], ALG, true, ["sign"]);
    return new CertificateAuthority(cert, key as unknown as CryptoKey, keyPem);
  }

  get certPem(): string {
    return this.cert.toString("pem");
  }

  async issue(req: CertificateRequest): Promise<KeyPairPem> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
    const now = Date.now();
    const ext: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(
        req.usage === "server"
          ? [x509.ExtendedKeyUsage.serverAuth]
          : req.usage === "client"
            ? [x509.ExtendedKeyUsage.clientAuth]
            : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      await x509.AuthorityKeyIdentifierExtension.create(this.cert, false),
    ];
    const names: x509.JsonGeneralName[] = [
      ...(req.dnsNames ?? []).map((v) => ({ type: "dns" as const, value: v })),
      ...(req.ipAddresses ?? []).map((v) => ({ type: "ip" as const, value: v })),
    ];
    if (names.length) ext.push(new x509.SubjectAlternativeNameExtension(names, false));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: subjectName(req.commonName, req.organizations),
      issuer: this.cert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + TEN_YEARS_MS),
      signingKey: this.key,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: ext,
    });
    return { certPem: cert.toString("pem"), keyPem: await exportKey(keys.privateKey) };
  }
}

/** The service-account token signing key pair (ECDSA, PEM). */
export async function serviceAccountKeyPair(): Promise<{ publicPem: string; privatePem: string }> {
  const keys = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey);
  return {
    publicPem: x509.PemConverter.encode(spki, "PUBLIC KEY"),
    privatePem: await exportKey(keys.privateKey as unknown as CryptoKey),
  };
}
