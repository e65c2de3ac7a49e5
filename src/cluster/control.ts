import { rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/**
 * The supervisor's control channel: a unix socket in the run directory (only the user who ran `up`
 * can open it), one JSON request and one JSON answer per connection. `skillserve status` and
 * `skillserve scale` use it from another shell.
 */
export type ControlRequest = { cmd: 'status' } | { cmd: 'scale'; counts: Record<string, number> };
export type ControlAnswer = { ok: true; result: unknown } | { ok: false; error: string };

export function controlPath(runDir: string): string {
  return join(runDir, 'control.sock');
}

const MAX_REQUEST_BYTES = 64 * 1024;

export async function serveControl(
  runDir: string,
  handle: (req: ControlRequest) => Promise<unknown>,
): Promise<{ close(): Promise<void> }> {
  const path = controlPath(runDir);
  rmSync(path, { force: true });
  const server: Server = createServer((socket) => {
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) return void socket.end(answer({ ok: false, error: 'request too large' }));
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        return void socket.end(answer({ ok: false, error: 'not JSON' }));
      }
      handle(req).then(
        (result) => socket.end(answer({ ok: true, result })),
        (err: unknown) => socket.end(answer({ ok: false, error: (err as Error).message })),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        rmSync(path, { force: true });
      }),
  };
}

const answer = (a: ControlAnswer) => `${JSON.stringify(a)}\n`;

/** Sends one request to the supervisor of `runDir`; rejects with its error, or when none answers. */
export function askSupervisor(runDir: string, req: ControlRequest, timeoutMs = 120_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(controlPath(runDir));
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the supervisor did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (chunk: string) => (buf += chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`no supervisor answers on ${controlPath(runDir)}: ${err.message}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        const a = JSON.parse(buf) as ControlAnswer;
        if (a.ok) resolve(a.result);
        else reject(new Error(a.error));
      } catch {
        reject(new Error('the supervisor sent an unreadable answer'));
      }
    });
  });
}
