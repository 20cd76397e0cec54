import { strict as assert } from 'node:assert';
import type { Command } from 'commander';
import { buildCli, type ControllerCliOptions } from '../../src/cli.js';
import { deploymentOf, renderChart } from '../support/helm-render/render.js';

/** Parses a Deployment's args with the real CLI, capturing the controller's options instead of starting it. */
async function parseControllerArgs(args: string[]): Promise<ControllerCliOptions> {
  const program = buildCli();
  const controller = program.commands.find((c: Command) => c.name() === 'controller');
  assert.ok(controller, 'the CLI has no controller command');
  let captured: ControllerCliOptions | undefined;
  controller.action((opts: ControllerCliOptions) => {
    captured = opts;
  });
  await program.parseAsync(args, { from: 'user' });
  assert.ok(captured, 'controller action did not run');
  return captured;
}

describe('ship: the chart passes flags the controller CLI accepts', function () {
  this.timeout(240_000);

  it('default values: leader election on, in the pod namespace, design timings', async () => {
    const { container } = deploymentOf(await renderChart());
    assert.equal(container.args[0], 'controller');
    const o = await parseControllerArgs(container.args);
    assert.equal(o.leaderElect, true);
    assert.equal(o.leaderElectNamespace, '$(POD_NAMESPACE)'); // expanded by the kubelet from the env var
    assert.deepEqual([o.leaseDuration, o.renewDeadline, o.retryPeriod], ['15s', '10s', '2s']);
    assert.equal(o.metricsAddr, ':8080');
    assert.equal(o.concurrency, 4);
    assert.deepEqual(o.namespace, []);
    assert.deepEqual([o.logLevel, o.logFormat], ['info', 'json']);
  });

  it('non-default values reach the CLI, including --leader-elect=false', async () => {
    const { container } = deploymentOf(
      await renderChart({
        values: { leaderElection: { enabled: false }, watchNamespaces: ['a', 'b'], labelSelector: 'team=x', concurrency: 9, logLevel: 'debug', logFormat: 'text', metrics: { port: 9100 } },
      }),
    );
    const o = await parseControllerArgs(container.args);
    assert.equal(o.leaderElect, false);
    assert.deepEqual(o.namespace, ['a', 'b']);
    assert.equal(o.selector, 'team=x');
    assert.equal(o.concurrency, 9);
    assert.equal(o.metricsAddr, ':9100');
    assert.deepEqual([o.logLevel, o.logFormat], ['debug', 'text']);
  });

  it('a bad flag is refused by the CLI (the check can fail)', async () => {
    await assert.rejects(parseControllerArgs(['controller', '--no-such-flag']));
  });

  it('the pod waits longer than the controller shutdown grace before being killed', async () => {
    const { pod, container } = deploymentOf(await renderChart());
    const o = await parseControllerArgs(container.args);
    const grace = /^(\d+)s$/.exec(o.shutdownGrace);
    assert.ok(grace, `unexpected --shutdown-grace default ${o.shutdownGrace}`);
    assert.ok((pod.terminationGracePeriodSeconds ?? 30) > Number(grace[1]), 'terminationGracePeriodSeconds <= --shutdown-grace');
  });
});
