import type { BenchContext } from './types.js';
import { pushRandomImage, type PushedImage } from '../lib/push.js';

const MiB = 1024 * 1024;

/** The 5 × 20 MiB app image (5 × 256 KiB with --quick). */
export function appShape(ctx: BenchContext): { layers: number; layerSize: number } {
  return { layers: 5, layerSize: ctx.quick ? 256 * 1024 : 20 * MiB };
}

/** The 1 GiB image: 8 × 128 MiB (8 × 1 MiB with --quick). */
export function bigShape(ctx: BenchContext): { layers: number; layerSize: number } {
  return { layers: 8, layerSize: ctx.quick ? MiB : 128 * MiB };
}

/** Pushes a new random image to registry A and records its blob sizes. */
export async function pushFresh(ctx: BenchContext, repo: string, shape: { layers: number; layerSize: number }, tag = '1'): Promise<PushedImage> {
  const img = await pushRandomImage(ctx.registryA.url, repo, { ...shape, tag });
  for (const b of [img.config, ...img.layers]) ctx.knownSizes.set(b.digest, b.size);
  return img;
}

export const TLS_OFF = ['--insecure-policy'];
export function skopeoCopy(src: string, dst: string): string[] {
  return [...TLS_OFF, 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src}`, `docker://${dst}`];
}
