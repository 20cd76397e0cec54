/**
 * The registry backend: the distribution API client (wire protocol modules in src/oci) and the
 * pool that keeps one client per registry, TLS mode and credential.
 */
export { RegistryClient, REGISTRY_CAPABILITIES, type RegistryClientOptions } from '../../oci/registry.js';
export { RegistryPool, CredentialLookupError, CLIENT_POOL_MAX, type RegistryPoolOptions } from './pool.js';
