import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildCli, RUN_METRICS_ADDR } from '../../src/cli.js';

/** Parses `args` with the real CLI, capturing the named command's options instead of running it. */
async function optionsOf(command: string, args: string[]): Promise<Record<string, unknown>> {
  const program = buildCli();
  const cmd = program.commands.find((c: Command) => c.name() === command);
  assert.ok(cmd, `no ${command} command`);
  let captured: Record<string, unknown> | undefined;
  cmd.action((opts: Record<string, unknown>) => {
    captured = opts;
  });
  await program.parseAsync([command, ...args], { from: 'user' });
  assert.ok(captured, `${command} action did not run`);
  return captured;
}

const required: Record<string, string[]> = { sync: ['-f', 'x.yaml'], run: ['--specs', 'dir'], controller: [] };

describe('CLI flags for many teams', () => {
  for (const command of ['sync', 'run', 'controller']) {
    it(`${command}: --require-policy (default off) and --reconcile-timeout (default 30m, checked at parse time)`, async () => {
      const defaults = await optionsOf(command, required[command]!);
      assert.equal(defaults.requirePolicy, undefined);
      assert.equal(defaults.reconcileTimeout, '30m');
      const set = await optionsOf(command, [...required[command]!, '--require-policy', '--reconcile-timeout', '5m']);
      assert.equal(set.requirePolicy, true);
      assert.equal(set.reconcileTimeout, '5m');
      await assert.rejects(optionsOf(command, [...required[command]!, '--reconcile-timeout', 'soon']), /--reconcile-timeout: /);
    });
  }

  it(`run serves /status on loopback by default (${RUN_METRICS_ADDR}) and says why; the controller keeps :8080`, async () => {
    assert.equal(RUN_METRICS_ADDR, '127.0.0.1:8080');
    assert.equal((await optionsOf('run', required.run!)).metricsAddr, RUN_METRICS_ADDR);
    assert.equal((await optionsOf('run', [...required.run!, '--metrics-addr', ':9000'])).metricsAddr, ':9000');
    assert.equal((await optionsOf('controller', [])).metricsAddr, ':8080');
    const run = buildCli().commands.find((c: Command) => c.name() === 'run')!;
    const help = run.helpInformation().replace(/\s+/g, ' ');
    assert.match(help, /--metrics-addr <addr> serve \/metrics, \/healthz, \/readyz, \/status here; loopback by default because \/status shows/);
    assert.match(help, /\(default: "127\.0\.0\.1:8080"\)/);
  });
});
