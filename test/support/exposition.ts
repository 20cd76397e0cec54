/** Reads a Prometheus text exposition: the samples of one metric, with their labels. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of name as `label=value,…` → value, sorted: easy to deepEqual. */
export function seriesOf(text: string, name: string, keys: string[]): Record<string, number> {
  const rows = samples(text, name).map((s) => [keys.map((k) => `${k}=${s.labels[k] ?? ''}`).join(','), s.value] as const);
  return Object.fromEntries(rows.sort(([a], [b]) => a.localeCompare(b)));
}

/** Whether the exposition declares the metric at all (a HELP line). */
export function declares(text: string, name: string): boolean {
  return new RegExp(`^# HELP ${name} `, 'm').test(text);
}
