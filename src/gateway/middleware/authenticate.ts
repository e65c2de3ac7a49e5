import type { NextFunction, Request, Response } from 'express';
import type { Authenticator } from '../../auth/authenticator.js';
import type { Principal } from '../../auth/key-store.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal: Principal;
  }
}

/** Requires a valid API key; the caller's tenant and tier go on `req.principal`. */
export function authenticate({ authenticator }: { authenticator: Pick<Authenticator, 'authenticate'> }) {
  return async function authenticateMiddleware(req: Request, _res: Response, next: NextFunction): Promise<void> {
    req.principal = await authenticator.authenticate(req.headers.authorization);
    next();
  };
}
