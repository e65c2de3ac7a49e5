export { AppError, type ErrorBody } from './app-error.js';
export { errorCatalogue, isErrorCode, type ErrorCode } from './catalogue.js';
