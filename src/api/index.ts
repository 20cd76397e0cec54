/**
 * The API, declared once (see imagemirror.ts and policy.ts): types, vocabulary, defaults and the
 * declarations the CRDs, docs and validation are derived from. Imports nothing else from src/.
 */
export * from './vocabulary.js';
export * from './types.gen.js';
export type { ObjectMeta, PolicyMeta } from './meta.js';
export { MIRROR, LIMITS, PATTERNS, SELECTORS } from './imagemirror.js';
export { POLICY, POLICY_LIMITS, POLICY_PATTERNS } from './policy.js';
export { DEFAULTS, intervalOf, overwriteEnabled, pruneEnabled, referrersEnabled, suspended, trustedRootKey } from './defaults.js';
