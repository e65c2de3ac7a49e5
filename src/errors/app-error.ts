import { type ErrorCode, errorCatalogue, isErrorCode } from './catalogue.js';

/** Serialised form of an {@link AppError}, as it travels in job results and API bodies. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** Extra, safe-to-show facts, e.g. the field that failed validation. */
  details?: Record<string, unknown>;
}

/** An error with a stable code from the catalogue; the only kind the API shows its message for. */
export class AppError extends Error {
  readonly status: number;
  /** Seconds a client should wait before retrying (sent as Retry-After). */
  retryAfterS?: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown; retryAfterS?: number },
  ) {
    super(message ?? errorCatalogue[code].message, { cause: options?.cause });
    this.name = 'AppError';
    this.status = errorCatalogue[code].status;
    // A `retryAfterS` detail is how Retry-After survives serialisation (job failures, skill items).
    const detail = details?.retryAfterS;
    this.retryAfterS = options?.retryAfterS ?? (typeof detail === 'number' && detail > 0 ? detail : undefined);
  }

  toJSON(): ErrorBody {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }

  /** Rebuilds an AppError from its serialised form; anything unrecognised becomes INTERNAL. */
  static from(body: unknown): AppError {
    if (body instanceof AppError) return body;
    const b = body as Partial<ErrorBody> | undefined;
    if (b && isErrorCode(b.code)) {
      return new AppError(b.code, b.message, b.details);
    }
    return new AppError('INTERNAL', undefined, undefined, { cause: body });
  }
}
