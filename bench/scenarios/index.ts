/**
 * The scenario registry, in table order. To add one (e.g. issue 4's controller throughput: 1,000
 * ImageMirrors reconciled with bounded concurrency, reporting reconciles/s and the controller's peak
 * RSS), write a `Scenario` in this folder — `tools: ['ours']` when skopeo has no counterpart, and its
 * own `MetricDef`s if the standard ones do not fit — and append it here. The runner, the table,
 * results.json and `--scenario NAME` pick it up without other changes.
 */
import { copySameRegistry } from './copy.js';
import { retagSameRepo } from './retag.js';
import { resyncNoChange } from './resync.js';
import { bigToOtherRegistry } from './big.js';
import { fanOut } from './fanout.js';
import { archiveRoundTrip } from './archive.js';
import { startupFromCheckout } from './startup.js';
import { controllerConcurrency, controllerTenThousand, controllerThroughput } from './controller.js';
import type { Scenario } from './types.js';

export const SCENARIOS: readonly Scenario[] = [copySameRegistry, retagSameRepo, resyncNoChange, bigToOtherRegistry, archiveRoundTrip, fanOut, startupFromCheckout, controllerThroughput, controllerConcurrency, controllerTenThousand];
