/**
 * Child process for the lazy-loading test: imports the cloud credentials entry point, makes a
 * provider of the kind named in argv, asks it for a credential with `--get`, and prints the
 * CommonJS modules loaded, as JSON, on stdout.
 * Usage: use-provider.ts <aws|gcp|azure> <registry> [--get]
 */
import { createRequire } from 'node:module';
import { cloudCredentials, type CloudProvider } from '../../../src/auth/index.js';

const [kind, registry, get] = process.argv.slice(2);
const p = await cloudCredentials(kind as CloudProvider, registry!);
const identity = p.identity;
const credential = get === '--get' ? (await p.get(registry!))?.kind : undefined;
const cjs = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(JSON.stringify({ identity, credential, cjs }));
