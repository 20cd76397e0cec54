/**
 * Logging through winston. One logger per process; `child` adds fields (mirror, registry).
 * Callers pass names and hosts, never credentials; still, messages quote registry answers and
 * errors, so every line is redacted on its way out (the first format, before any rendering).
 */
import winston from 'winston';
import { redact, redactValue } from './oci/redact.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'json' | 'text';

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Whether `level` is written: callers skip building what would be dropped (a line per request at debug). */
  isLevelEnabled?(level: LogLevel): boolean;
}

/** Redacts the message and every field value (string or nested) of a log entry. */
const redactEntry = winston.format((info) => {
  info.message = redact(typeof info.message === 'string' ? info.message : String(info.message));
  for (const k of Object.keys(info)) {
    if (k === 'level' || k === 'message') continue;
    info[k] = redactValue(info[k]);
  }
  return info;
});

export function createLogger(o: { level?: LogLevel; format?: LogFormat; stream?: NodeJS.WritableStream } = {}): Logger {
  const format =
    o.format === 'json'
      ? winston.format.combine(redactEntry(), winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          redactEntry(),
          winston.format.timestamp(),
          winston.format.printf(({ level, message, timestamp, ...rest }) => {
            const extra = Object.entries(rest)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ');
            return `${String(timestamp)} ${level} ${String(message)}${extra ? ' ' + extra : ''}`;
          }),
        );
  const transport = o.stream
    ? new winston.transports.Stream({ stream: o.stream })
    : new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] });
  return wrap(winston.createLogger({ level: o.level ?? 'info', format, transports: [transport] }));
}

function wrap(w: winston.Logger): Logger {
  return {
    error: (m, f) => void w.error(m, f),
    warn: (m, f) => void w.warn(m, f),
    info: (m, f) => void w.info(m, f),
    debug: (m, f) => void w.debug(m, f),
    child: (fields) => wrap(w.child(fields)),
    isLevelEnabled: (level) => w.isLevelEnabled(level),
  };
}

/** A logger that drops everything, for library callers and tests that do not care. */
export const silentLogger: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  child: () => silentLogger,
  isLevelEnabled: () => false,
};
