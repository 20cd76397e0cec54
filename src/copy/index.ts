/** The copy engine's public surface, for src/mirror and the CLI. */
export { CopyEngine, type CopyEngineOptions, type CopyImageRequest, type CopyImageResult, type CopyProgress, type CopyTarget } from './engine.js';
export { BlobLocations, type BlobLocationsOptions } from './blob-locations.js';
export { fallbackTag, cosignTags } from './referrers.js';
export * from './actions.js';
export type { TargetReport } from './report.js';
export type { CopyObserver, LearnedCapability } from './observer.js';
