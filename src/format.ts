/**
 * Byte counts as people read them, the same in the CLI's table and the controller's events: IEC
 * units (KiB = 1024 B), one decimal below 10, none above, exact below 1 KiB.
 */
const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return `${n} B`;
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n / 1024;
  let u = 0;
  // Round first: 1023.96 KiB would otherwise print as "1024 KiB" instead of "1.0 MiB".
  while (u < UNITS.length - 1 && Number(v.toFixed(v < 10 ? 1 : 0)) >= 1024) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}
