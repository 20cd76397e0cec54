/**
 * Bad usage (a flag, a path, an address the operator typed): the CLI prints its one line and exits
 * 2, not 1, so scripts can tell a mistake in the command from a mirror that failed.
 */
export class UsageError extends Error {}
