import type { MetricDef } from './types.js';

const MiB = 1024 * 1024;
const int = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

export const WALL: MetricDef = { key: 'wall_s', label: 'wall time', format: (v) => `${v.toFixed(2)} s` };
export const REQUESTS: MetricDef = { key: 'requests', label: 'registry requests', format: int };
export const UPLOADS: MetricDef = { key: 'blob_uploads', label: 'blob uploads', format: int };
export const MOUNTS: MetricDef = { key: 'blob_mounts', label: 'blob mounts', format: int };
export const BYTES_UPLOADED: MetricDef = { key: 'bytes_uploaded', label: 'blob bytes uploaded', format: (v) => `${(v / MiB).toFixed(1)} MiB` };
export const SOURCE_GETS: MetricDef = { key: 'source_blob_gets', label: 'source blob GETs', format: int };
export const PEAK_RSS: MetricDef = { key: 'peak_rss_kb', label: 'peak RSS', format: (v) => `${(v / 1024).toFixed(0)} MiB` };

/** What every copy scenario reports, in table order. */
export const STANDARD: readonly MetricDef[] = [WALL, REQUESTS, UPLOADS, MOUNTS, BYTES_UPLOADED, SOURCE_GETS, PEAK_RSS];
