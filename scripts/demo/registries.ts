/**
 * Starts two throwaway registries (Debian's docker-registry on free loopback ports, temp storage)
 * for scripts/demo.sh, writes `REGISTRY_A=host:port` / `REGISTRY_B=host:port` to the given file once
 * both answer, and stops them (deleting their storage) on SIGTERM or SIGINT.
 *
 *   node --import tsx scripts/demo/registries.ts STATE_FILE
 */
import { rename, writeFile } from 'node:fs/promises';
import { startRegistry, type TestRegistry } from '../../test/support/registry.js';

const stateFile = process.argv[2];
if (!stateFile) {
  process.stderr.write('usage: registries.ts STATE_FILE\n');
  process.exit(2);
}

const started: TestRegistry[] = [];
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await Promise.allSettled(started.map((r) => r.stop()));
  }
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));

try {
  started.push(await startRegistry());
  started.push(await startRegistry());
  // Written whole then renamed, so the shell never reads half a file.
  await writeFile(`${stateFile}.tmp`, `REGISTRY_A=${started[0]!.host}\nREGISTRY_B=${started[1]!.host}\n`);
  await rename(`${stateFile}.tmp`, stateFile);
} catch (e) {
  process.stderr.write(`demo: could not start the registries: ${e instanceof Error ? e.message : String(e)}\n`);
  await stop(1);
}
