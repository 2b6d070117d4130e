/**
 * The one logger shape every layer takes (pino's calling convention: fields first, then the
 * message). `src/main` passes pino; tests pass `silentLogger` or a recorder.
 */
export interface Logger {
  info(fields: unknown, message?: string): void;
  warn(fields: unknown, message?: string): void;
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined };
