import { createPublicKey, type KeyObject } from "node:crypto";
import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import picomatch from "picomatch";
import type { AuthConfig } from "../config.ts";

/** What a verified token says: the user (`sub`) and the rooms it may open (`room`), null for any. */
export interface TokenClaims {
  user: string | null;
}

/** A refusal at the upgrade: the status and a one-line reason. */
export interface Denied {
  status: number;
  reason: string;
}

export type TokenVerifier = (token: string, room: string) => Promise<TokenClaims | Denied>;

const HMAC = ["HS256", "HS384", "HS512"];
const RSA = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
const ASYMMETRIC = [...RSA, "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];
const CURVES: Readonly<Record<string, string>> = {
  prime256v1: "ES256",
  secp384r1: "ES384",
  secp521r1: "ES512",
};

/**
 * The algorithms a PEM public key may verify, pinned by its kind, so a token can never pick another: an RSA key
 * is never read as an HMAC secret, and `none` is never among them. Throws for a key no JWT algorithm uses.
 */
export function keyAlgorithms(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return RSA;
    case "rsa-pss":
      return RSA.filter((a) => a.startsWith("PS"));
    case "ec": {
      const alg = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
      if (alg === undefined) throw new Error(`unsupported curve ${key.asymmetricKeyDetails?.namedCurve}`);
      return [alg];
    }
    case "ed25519":
    case "ed448":
      return ["EdDSA", "Ed25519"];
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType ?? key.type}`);
}

/**
 * Reads `--jwtkey`'s content: a JWKS (JSON with public keys only, no shared secrets) or a PEM public key (or a
 * certificate). Throws with what is wrong; the CLI calls it at start so a bad file is a usage error.
 */
export function parseJwtKey(text: string): { key: KeyObject | JWTVerifyGetKey; algorithms: string[] } {
  if (text.trimStart().startsWith("{")) {
    const jwks = JSON.parse(text) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0)
      throw new Error("a JWKS needs a non-empty keys array");
    for (const k of jwks.keys) {
      if (k.kty === "oct")
        throw new Error("a JWKS for --jwtkey holds public keys; use --jwtsecret for a secret");
      if (!["RSA", "EC", "OKP"].includes(k.kty ?? "")) throw new Error(`unsupported key type ${k.kty}`);
    }
    // jose picks the key by `kid` and `alg` and checks the key's type fits the algorithm.
    return { key: createLocalJWKSet(jwks), algorithms: ASYMMETRIC };
  }
  const key = createPublicKey(text);
  return { key, algorithms: keyAlgorithms(key) };
}

/** Compiled `room` claim patterns, bounded: the claims come from tokens, which the issuer chooses. */
const roomMatchers = new Map<string, (room: string) => boolean>();
const MAX_ROOM_MATCHERS = 256;

function roomAllowed(claim: unknown, room: string): boolean {
  if (claim === undefined) return true;
  const patterns = Array.isArray(claim) ? claim : [claim];
  return patterns.some((p) => {
    if (typeof p !== "string") return false;
    if (p === room) return true;
    let match = roomMatchers.get(p);
    if (match === undefined) {
      match = picomatch(p, { dot: true });
      if (roomMatchers.size < MAX_ROOM_MATCHERS) roomMatchers.set(p, match);
    }
    return match(room);
  });
}

/** The one-line reason for a token jose refused. */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "token expired";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  if (err instanceof errors.JOSEAlgNotAllowed) return "token algorithm not allowed";
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
    return "no key matches the token";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "exp") return "token has no exp claim";
    if (err.claim === "nbf") return "token not valid yet";
    return `token claim ${err.claim} is invalid`;
  }
  return "malformed token";
}

/** A verifier for the `--jwtsecret`/`--jwtkey` config, or throws if the key cannot be read. */
export function tokenVerifier(auth: Extract<AuthConfig, { kind: "jwtsecret" | "jwtkey" }>): TokenVerifier {
  const { key, algorithms } =
    auth.kind === "jwtsecret"
      ? { key: new TextEncoder().encode(auth.secret), algorithms: HMAC }
      : parseJwtKey(auth.text);
  const options = { algorithms, requiredClaims: ["exp"] };
  return async (token, room) => {
    let payload: JWTPayload;
    try {
      // jose's overloads split a key from a key-resolving function; both verify the same way.
      payload =
        typeof key === "function"
          ? (await jwtVerify(token, key, options)).payload
          : (await jwtVerify(token, key, options)).payload;
    } catch (err) {
      return { status: 401, reason: reasonOf(err) };
    }
    if (!roomAllowed(payload.room, room)) return { status: 401, reason: "room not allowed by the token" };
    return { user: typeof payload.sub === "string" ? payload.sub : null };
  };
}
