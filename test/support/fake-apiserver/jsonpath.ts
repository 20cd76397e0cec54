// The simple JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
// `.a[?(@.type=="Ready")].status`. Returns the first match, like the CRD table convertor.

type Step = { field: string } | { index: number } | { all: true } | { filter: { path: string[]; op: '==' | '!='; value: string } };

function parse(expr: string): Step[] {
  let s = expr.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  if (s.startsWith('$')) s = s.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === '.') {
      i++;
      let name = '';
      while (i < s.length && s[i] !== '.' && s[i] !== '[') name += s[i++];
      if (name) steps.push({ field: name });
    } else if (s[i] === '[') {
      const end = s.indexOf(']', s[i + 1] === '?' ? s.indexOf(')', i) : i);
      const inner = s.slice(i + 1, end);
      i = end + 1;
      if (inner === '*') steps.push({ all: true });
      else if (/^\d+$/.test(inner)) steps.push({ index: Number(inner) });
      else if (/^'.*'$|^".*"$/.test(inner)) steps.push({ field: inner.slice(1, -1) });
      else {
        const m = /^\?\(@((?:\.[\w-]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|(\S+))\)$/.exec(inner);
        if (!m) throw new Error(`unsupported JSONPath ${expr}`);
        steps.push({ filter: { path: m[1]!.slice(1).split('.'), op: m[2] as '==' | '!=', value: m[3] ?? m[4] ?? m[5]! } });
      }
    } else {
      throw new Error(`unsupported JSONPath ${expr}`);
    }
  }
  return steps;
}

function get(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** All values the expression selects. */
export function jsonPathAll(obj: unknown, expr: string): unknown[] {
  let cur: unknown[] = [obj];
  for (const step of parse(expr)) {
    const next: unknown[] = [];
    for (const v of cur) {
      if ('field' in step) {
        if (typeof v === 'object' && v !== null && !Array.isArray(v) && step.field in v) next.push((v as Record<string, unknown>)[step.field]);
      } else if ('index' in step) {
        if (Array.isArray(v) && step.index < v.length) next.push(v[step.index]);
      } else if ('all' in step) {
        if (Array.isArray(v)) next.push(...v);
        else if (typeof v === 'object' && v !== null) next.push(...Object.values(v));
      } else {
        if (!Array.isArray(v)) continue;
        for (const el of v) {
          const got = get(el, step.filter.path);
          const s = got === undefined || got === null ? undefined : String(got);
          if (step.filter.op === '==' ? s === step.filter.value : s !== step.filter.value) next.push(el);
        }
      }
    }
    cur = next;
  }
  return cur;
}

export function jsonPathFirst(obj: unknown, expr: string): unknown {
  return jsonPathAll(obj, expr)[0];
}
