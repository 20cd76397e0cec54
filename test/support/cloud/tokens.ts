/**
 * What the fake cloud token services issued, on a clock the test moves: the cloud front accepts a
 * token only while the ledger says it is valid, so a test can make a token expire mid-copy.
 */
import { randomBytes } from 'node:crypto';

export class TestClock {
  private t = Date.now();
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface IssuedToken {
  token: string;
  /** Which service issued it (`ecr`, `ecr-public`, `gcp`, `entra`, `acr-refresh`, …). */
  kind: string;
  issuedAt: number;
  expiresAt: number;
  /** Registry requests the cloud front let through with it. */
  uses: number;
}

export type TokenState = 'valid' | 'expired' | 'unknown';

export class TokenLedger {
  readonly tokens: IssuedToken[] = [];

  constructor(readonly now: () => number = Date.now) {}

  issue(kind: string, lifetimeMs: number, token = randomBytes(24).toString('base64url')): IssuedToken {
    const t: IssuedToken = { token, kind, issuedAt: this.now(), expiresAt: this.now() + lifetimeMs, uses: 0 };
    this.tokens.push(t);
    return t;
  }

  find(token: string): IssuedToken | undefined {
    return this.tokens.find((t) => t.token === token);
  }

  check(token: string, kind?: string): TokenState {
    const t = this.find(token);
    if (!t || (kind !== undefined && t.kind !== kind)) return 'unknown';
    return this.now() < t.expiresAt ? 'valid' : 'expired';
  }

  issued(kind: string): IssuedToken[] {
    return this.tokens.filter((t) => t.kind === kind);
  }
}

/** An unsigned JWT (`alg: none`) with these claims: what ACR refresh tokens and Entra tokens look like to a client. */
export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ ...claims, jti: randomBytes(8).toString('hex') })}.`;
}
