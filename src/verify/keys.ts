/**
 * cosign public keys: ECDSA P-256 (SHA-256), RSA (PKCS#1 v1.5, or PSS as cosign's KMS signers
 * produce) and Ed25519, each checked the way cosign signs with it. Only public keys are accepted:
 * a Secret holding a private key is a mistake worth saying so, not a key to derive one from.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** A key ready to check signatures, or why it cannot be used. */
export type LoadedKey = { name: string; key: KeyObject; problem?: undefined } | { name: string; key?: undefined; problem: string };

/** Smallest RSA modulus accepted: cosign refuses to generate or load smaller ones. */
export const MIN_RSA_BITS = 2048;

export function loadKey(name: string, pem: string): LoadedKey {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return { name, problem: `key ${name} is a private key; give the public key (cosign.pub)` };
  if (!/-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem)) return { name, problem: `key ${name} is not a PEM public key` };
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    return { name, problem: `key ${name} is not a readable PEM public key` };
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1') return { name, problem: `key ${name} is an ECDSA key on ${details.namedCurve ?? 'an unknown curve'}; ECDSA keys must be P-256` };
  } else if (type === 'rsa' || type === 'rsa-pss') {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) return { name, problem: `key ${name} is a ${details.modulusLength ?? '?'}-bit RSA key; at least ${MIN_RSA_BITS} bits` };
  } else if (type !== 'ed25519') {
    return { name, problem: `key ${name} is of type ${type ?? 'unknown'}; ECDSA P-256, RSA and Ed25519 keys are supported` };
  }
  return { name, key };
}

/** Whether `signature` is `key`'s signature of `payload`, as cosign makes them. */
export function signedBy(key: KeyObject, payload: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (key.asymmetricKeyType) {
      case 'ec':
        return verify('sha256', payload, { key, dsaEncoding: 'der' }, signature);
      case 'ed25519':
        return verify(null, payload, key, signature);
      case 'rsa':
        return (
          verify('sha256', payload, { key, padding: constants.RSA_PKCS1_PADDING }, signature) ||
          verify('sha256', payload, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature)
        );
      case 'rsa-pss':
        return verify('sha256', payload, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
      default:
        return false;
    }
  } catch {
    // A malformed signature (not DER, wrong length) is simply not a signature by this key.
    return false;
  }
}
