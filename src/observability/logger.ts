import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger: JSON lines on stdout, tagged with role and instance. */
export function createLogger(opts: { level: string; role: string; instance: string }): Logger {
  return pino({
    level: opts.level,
    base: { role: opts.role, instance: opts.instance },
    timestamp: pino.stdTimeFunctions.isoTime,
    // A request's body may hold a user's text: never log it by accident.
    redact: { paths: ['req.body', 'input', 'headers.authorization'], remove: true },
  });
}
