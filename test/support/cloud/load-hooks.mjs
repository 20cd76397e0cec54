// Module loader hooks that append every resolved module URL to the file named in `data.log`:
// how a test sees which packages a process loaded through `import` (CommonJS requires show in
// require.cache instead).
import { appendFileSync } from 'node:fs';

let log = '';

export function initialize(data) {
  log = data.log;
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (log) appendFileSync(log, `${r.url}\n`);
  return r;
}
