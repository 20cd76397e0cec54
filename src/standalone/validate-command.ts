/**
 * `image-mirror validate -f FILE|DIR|-`: every check that needs no registry and no Secret contents,
 * for pull-request checks where the Secrets are SealedSecrets or ExternalSecrets that cannot be read.
 *
 * Checked: YAML syntax, the schema and the CRD's CEL rules, RE2 tag patterns, semver ranges and
 * image references (validateMirror), ImageMirrorPolicies (validatePolicy) and whether each mirror
 * fits the policies of its namespace, names defined twice, Secret documents that are present but
 * malformed, and two mirrors writing the same target tag where the tags are known without listing
 * a registry (`source.tags`, or target `tags`). A Secret a mirror names but the files lack is not
 * a problem here: it is expected to come from elsewhere.
 *
 * Output: one line per problem, `file:line: message`, then a summary; exit 0 when there is none,
 * 1 when there is any, 2 on bad usage.
 */
import { access } from 'node:fs/promises';
import { checkPolicy } from '../mirror/policy.js';
import type { ImageMirror } from '../mirror/types.js';
import { formatRepository, parseRepository } from '../oci/reference.js';
import { judgeSpecs, type MirrorEntry } from './judge-specs.js';
import { loadSpecFiles, STDIN_NAME, STDIN_PATH, type SpecFileError } from './spec-files.js';
import { UsageError } from './sync.js';

export interface ValidateOptions {
  files: string[];
  /** Also refuse mirrors in namespaces no ImageMirrorPolicy names (as `--require-policy` would). */
  requirePolicy?: boolean;
  stdin?: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
}

export interface SpecProblem {
  /** `file:line` (or a path, for an unreadable file). */
  source: string;
  /** One line. */
  message: string;
}

export interface ValidateReport {
  problems: SpecProblem[];
  mirrors: number;
  policies: number;
}

/** How many target tags one duplicate-target line names before "and N more". */
export const DUPLICATE_TARGETS_SHOWN = 3;

/**
 * The target tags a mirror writes when they are known without asking a registry: listed source
 * tags (or a digest) with the target's own tags, else the listed source tags. A tagPattern or semver
 * source without target tags writes whatever the registry holds: unknown here.
 */
export function staticTargetReferences(mirror: ImageMirror): string[] {
  const { source, targets } = mirror.spec;
  const refs: string[] = [];
  for (const t of targets) {
    const tags = t.tags?.length ? t.tags : source.tagPattern === undefined && source.semver === undefined ? source.tags ?? [] : [];
    let repo: string;
    try {
      repo = formatRepository(parseRepository(t.repository));
    } catch {
      continue; // validateMirror has reported it
    }
    for (const tag of tags) refs.push(`${repo}:${tag}`);
  }
  return [...new Set(refs)];
}

/** Pairs of mirrors writing the same target tag, each named with its `file:line`. */
function duplicateTargets(entries: MirrorEntry[]): SpecProblem[] {
  const writers = new Map<string, MirrorEntry[]>();
  for (const e of entries) {
    if (!e.mirror) continue;
    for (const ref of staticTargetReferences(e.mirror)) {
      const w = writers.get(ref);
      if (w) w.push(e);
      else writers.set(ref, [e]);
    }
  }
  /** `keyA\0keyB` → the shared tags, so one pair of mirrors is one line however many tags they share. */
  const pairs = new Map<string, { a: MirrorEntry; b: MirrorEntry; refs: string[] }>();
  for (const [ref, w] of writers) {
    for (let i = 0; i < w.length; i++) {
      for (let j = i + 1; j < w.length; j++) {
        const id = `${w[i]!.key}\0${w[j]!.key}`;
        const p = pairs.get(id);
        if (p) p.refs.push(ref);
        else pairs.set(id, { a: w[i]!, b: w[j]!, refs: [ref] });
      }
    }
  }
  return [...pairs.values()].map(({ a, b, refs }) => {
    const shown = refs.slice(0, DUPLICATE_TARGETS_SHOWN).join(', ');
    const more = refs.length > DUPLICATE_TARGETS_SHOWN ? ` and ${refs.length - DUPLICATE_TARGETS_SHOWN} more` : '';
    return {
      source: a.source,
      message: `ImageMirror ${a.key} and ImageMirror ${b.key} (${b.source}) both write ${shown}${more}; a target tag needs one owner`,
    };
  });
}

/** Every registry-free check over the files; never throws for their content. */
export async function validateSpecs(files: string[], o: { requirePolicy?: boolean; stdin?: NodeJS.ReadableStream } = {}): Promise<ValidateReport> {
  const loaded = await loadSpecFiles(files, { stdin: o.stdin });
  const judged = judgeSpecs(loaded);
  const problems: SpecProblem[] = [...loaded.errors, ...judged.errors].map((e: SpecFileError) => ({ source: e.source, message: e.message }));
  for (const e of judged.mirrors) {
    if (e.error !== undefined) {
      // A name defined twice is already worded as a sentence about the ImageMirror.
      problems.push({ source: e.source, message: e.error.startsWith('ImageMirror ') ? e.error : `ImageMirror ${e.key}: ${e.error}` });
      continue;
    }
    const decision = checkPolicy(e.mirror!, judged.policies, o.requirePolicy === true);
    if (!decision.allowed) problems.push({ source: e.source, message: `ImageMirror ${e.key}: ${decision.message}` });
  }
  problems.push(...duplicateTargets(judged.mirrors));
  return { problems, mirrors: judged.mirrors.length, policies: loaded.policies.length };
}

export async function runValidate(o: ValidateOptions): Promise<{ exitCode: number; report: ValidateReport }> {
  if (o.files.length === 0) throw new UsageError('no spec files given (use -f FILE|DIR|-)');
  for (const f of o.files) {
    if (f === STDIN_PATH) continue;
    try {
      await access(f);
    } catch {
      throw new UsageError(`${f}: no such file or directory`);
    }
  }
  const report = await validateSpecs(o.files, { requirePolicy: o.requirePolicy, stdin: o.stdin });
  if (report.mirrors === 0 && report.policies === 0 && report.problems.length === 0) {
    throw new UsageError(`no ImageMirror or ImageMirrorPolicy documents found in ${o.files.map((f) => (f === STDIN_PATH ? STDIN_NAME : f)).join(', ')}`);
  }
  let text = '';
  for (const p of report.problems) text += `${p.source}: ${p.message}\n`;
  const counted = `${plural(report.mirrors, 'ImageMirror')}, ${plural(report.policies, 'ImageMirrorPolicy', 'ImageMirrorPolicies')}`;
  text += report.problems.length === 0 ? `valid: ${counted}\n` : `invalid: ${plural(report.problems.length, 'problem')} in ${counted}\n`;
  o.stdout.write(text);
  return { exitCode: report.problems.length === 0 ? 0 : 1, report };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
