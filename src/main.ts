#!/usr/bin/env node
/** Entry point: run the CLI and exit with its code (0 ok, 1 a mirror failed, 2 bad usage). */
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with llhttp compiled to WebAssembly, on the first connection. V8's optimizing
// wasm tier compiles all of it at once: ~0.25 s of CPU and ~35 MiB of peak RSS (compiler zone
// memory), a third of a sync's footprint, for a parser whose work per response is small (a body
// passes through it as one span per socket read). The baseline tier compiles it in milliseconds.
// Read when the module is compiled, so it is set before anything connects: the CLI is imported below.
setFlagsFromString('--liftoff-only');

const args = process.argv.slice(2);
if (args[0] === 'sync') {
  // A sync is short-lived and streams blobs. Under that allocation rate V8 grows the young
  // generation (up to 16 MiB a semi-space), and each socket read's 64 KiB buffer stays allocated
  // until a scavenge finds it dead, so fewer scavenges hold more of them: kept at its initial size,
  // the 1 GiB copy peaks at ~99 MiB instead of ~114 MiB, at the same CPU (and a no-op sync too).
  // Unmeasured for the long-running commands, which keep V8's default.
  setFlagsFromString('--semi-space-growth-factor=1');
}

const { main } = await import('./cli.js');
const code = await main(args);
process.exit(code);
