import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseJwtKey } from "../access/jwt.ts";
import { normalizeOrigin } from "../access/origin.ts";
import { proxyEntryError } from "../access/proxy.ts";
import type { AuthConfig, TlsConfig } from "../config.ts";
import { UsageError } from "./errors.ts";
import { nonEmptyList } from "./values.ts";

/** The access flags as read, before they are checked. */
export interface AccessFlags {
  origin?: string;
  jwtsecret?: string;
  jwtkey?: string;
  authurl?: string;
  trustproxy?: string;
  tlscert?: string;
  tlskey?: string;
}

/** `--origin`: each entry normalised, or an error naming the one that is not an origin. */
export function parseOrigins(value: string): string[] {
  return nonEmptyList("origin", value).map((entry) => {
    const origin = normalizeOrigin(entry);
    if (origin === null) {
      throw new UsageError(
        `invalid value '${entry}' for --origin: expected an origin like https://example.com, a glob like https://*.example.com, or same`,
      );
    }
    return origin;
  });
}

/** `--trustproxy`: IPs and CIDRs. */
export function parseTrustProxy(value: string): string[] {
  const list = nonEmptyList("trustproxy", value);
  for (const entry of list) {
    const why = proxyEntryError(entry);
    if (why !== null) throw new UsageError(`invalid value '${entry}' for --trustproxy: ${why}`);
  }
  return list;
}

/** A file's text, or a usage error that names the flag and the file. */
function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read --${flag} '${file}': ${code ?? (err as Error).message}`);
  }
}

/** The one way upgrades are authenticated, if any: the flags exclude each other. */
export function parseAuth(a: AccessFlags): AuthConfig | null {
  const given = (["jwtsecret", "jwtkey", "authurl"] as const).filter((f) => a[f] !== undefined);
  if (given.length > 1) throw new UsageError(`--${given[0]} conflicts with --${given[1]}`);
  if (a.jwtsecret !== undefined) {
    // RFC 7518 3.2: an HMAC key at least as long as the hash. The value is never repeated: it is a secret.
    if (new TextEncoder().encode(a.jwtsecret).length < 32) {
      throw new UsageError("--jwtsecret is too short: use 32 bytes or more (openssl rand -base64 32)");
    }
    return { kind: "jwtsecret", secret: a.jwtsecret };
  }
  if (a.jwtkey !== undefined) {
    const text = readFlagFile("jwtkey", a.jwtkey);
    try {
      parseJwtKey(text);
    } catch (err) {
      throw new UsageError(
        `--jwtkey '${a.jwtkey}' is not a PEM public key or a JWKS: ${firstLine(err as Error)}`,
      );
    }
    return { kind: "jwtkey", file: a.jwtkey, text };
  }
  if (a.authurl !== undefined) {
    let url: URL | null = null;
    try {
      url = new URL(a.authurl);
    } catch {}
    if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new UsageError(`invalid value '${a.authurl}' for --authurl: expected an http:// or https:// URL`);
    }
    return { kind: "authurl", url: url.href };
  }
  return null;
}

/**
 * `--tlscert` and `--tlskey`, read now and checked to be a certificate and the key that goes with it, so a bad
 * file stops the start with its name rather than failing the first handshake.
 */
export function parseTls(a: AccessFlags): TlsConfig | null {
  if (a.tlscert === undefined && a.tlskey === undefined) return null;
  if (a.tlscert === undefined) throw new UsageError("--tlskey needs --tlscert");
  if (a.tlskey === undefined) throw new UsageError("--tlscert needs --tlskey");
  const cert = readFlagFile("tlscert", a.tlscert);
  const key = readFlagFile("tlskey", a.tlskey);
  let x509: X509Certificate;
  try {
    // The first certificate is the server's; the ones after it are the chain.
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new UsageError(`--tlscert '${a.tlscert}' is not a PEM certificate: ${firstLine(err as Error)}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new UsageError(`--tlskey '${a.tlskey}' is not a PEM private key: ${firstLine(err as Error)}`);
  }
  if (!matches) throw new UsageError(`--tlskey '${a.tlskey}' is not the key of --tlscert '${a.tlscert}'`);
  return { certFile: a.tlscert, keyFile: a.tlskey, cert, key };
}

function firstLine(err: Error): string {
  return err.message.split("\n")[0] ?? "";
}
