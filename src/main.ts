#!/usr/bin/env node
/** Entry point: run the CLI and exit with its code (0 ok, 1 a mirror failed, 2 bad usage). */
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with llhttp compiled to WebAssembly, on the first connection. V8's optimizing
// wasm tier compiles all of it at once: ~0.25 s of CPU and ~35 MiB of peak RSS (compiler zone
// memory), a third of a sync's footprint, for a parser whose work per response is small (a body
// passes through it as one span per socket read). The baseline tier compiles it in milliseconds.
// Read when the module is compiled, so it is set before anything connects: the CLI is imported below.
setFlagsFromString('--liftoff-only');

const { main } = await import('./cli.js');
const code = await main(process.argv.slice(2));
process.exit(code);
