/** Medians and the markdown table the README quotes. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** ours/skopeo; undefined when the ratio says nothing (no skopeo value, or 0 of both). */
export function ratio(ours: number, other: number | undefined): string {
  if (other === undefined || Number.isNaN(other) || Number.isNaN(ours)) return '–';
  if (other === 0) return ours === 0 ? 'same' : '∞';
  const r = ours / other;
  return r >= 10 ? r.toFixed(0) : r.toFixed(2);
}

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], alignRight: readonly boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const cell = (s: string, i: number) => {
    const pad = ' '.repeat(widths[i]! - [...s].length);
    return alignRight[i] ? pad + s : s + pad;
  };
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (alignRight[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
