/**
 * Closing the reconciler waits for its registry connections to finish their requests; after a
 * reconcile timed out, one may be held open by a registry that never answers, and `sync` would then
 * exit only when some transport timeout fires (30 s measured). The file front ends wait this long
 * and then go on: `sync` exits, `run` finishes stopping; the process's end closes what is left.
 */
export const RECONCILER_CLOSE_GRACE_MS = 2_000;

export async function closeWithin(close: () => Promise<void>, ms: number = RECONCILER_CLOSE_GRACE_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  try {
    await Promise.race([close().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
