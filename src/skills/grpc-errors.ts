import { status, type ServiceError } from '@grpc/grpc-js';
import { AppError, type ErrorCode, isErrorCode } from '../errors/index.js';

const byStatus: Partial<Record<status, ErrorCode>> = {
  [status.UNAVAILABLE]: 'SKILL_UNAVAILABLE',
  [status.DEADLINE_EXCEEDED]: 'SKILL_TIMEOUT',
  [status.CANCELLED]: 'SKILL_UNAVAILABLE',
  [status.INVALID_ARGUMENT]: 'BAD_REQUEST',
  [status.NOT_FOUND]: 'SKILL_NOT_FOUND',
  [status.RESOURCE_EXHAUSTED]: 'OVERLOADED',
  [status.UNIMPLEMENTED]: 'SKILL_ERROR',
  [status.INTERNAL]: 'SKILL_ERROR',
  [status.UNKNOWN]: 'SKILL_ERROR',
};

/**
 * The one place a gRPC failure becomes an {@link AppError}. The details a skill sends are kept
 * for BAD_REQUEST (they describe the caller's input) and dropped otherwise (they may describe
 * the model's internals).
 */
export function fromGrpcError(err: Partial<ServiceError>, skill: string): AppError {
  const code = (err.code !== undefined && byStatus[err.code as status]) || 'SKILL_ERROR';
  const message = code === 'BAD_REQUEST' && err.details ? err.details : `${skill}: ${messageFor(code)}`;
  return new AppError(code, message, { skill }, { cause: err });
}

/**
 * An item-level error reported by a skill, kept if its code is one of ours, with the details the
 * skill attached (a `retryAfterS` among them becomes the error's Retry-After).
 */
export function fromItemError(error: { code: string; message: string; detailsJson?: string }, skill: string): AppError {
  const code: ErrorCode = isErrorCode(error.code) ? error.code : 'SKILL_ERROR';
  const details: Record<string, unknown> = { ...parseDetails(error.detailsJson), skill };
  return new AppError(code, error.message || `${skill}: the item failed`, details);
}

function parseDetails(json: string | undefined): Record<string, unknown> {
  if (!json) return {};
  try {
    const parsed: unknown = JSON.parse(json);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function messageFor(code: ErrorCode): string {
  switch (code) {
    case 'SKILL_UNAVAILABLE':
      return 'the skill is not reachable';
    case 'SKILL_TIMEOUT':
      return 'the skill did not answer in time';
    case 'OVERLOADED':
      return 'the skill is at capacity';
    default:
      return 'the skill failed';
  }
}
