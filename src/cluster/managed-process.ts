import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export interface ProcessSpec {
  /** Unique, human-readable: `gateway-1`, `skill-nlp`, `nginx`. */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** Node roles get an IPC channel: it closes when the supervisor dies, and they stop. */
  ipc: boolean;
  /** Signal that asks the process to stop gracefully. */
  stopSignal?: NodeJS.Signals;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** A process that ran this long before dying is restarted without delay growth. */
const STABLE_AFTER_MS = 30_000;

/**
 * One supervised child: started, restarted with exponential backoff when it dies on its own,
 * stopped gracefully (then killed) on request.
 */
export class ManagedProcess {
  private child?: ChildProcess;
  private stopping = false;
  private backoffMs = MIN_BACKOFF_MS;
  private restartTimer?: NodeJS.Timeout;
  restarts = 0;
  /** The internal admin port (metrics, health) the running child reported over IPC, if any. */
  adminPort?: number;
  /** The last admin port any run of it reported: where it is scraped (and found down) while it restarts. */
  lastAdminPort?: number;
  /** A skill's gRPC port, as it reported it over IPC (the health monitor checks it). */
  grpcPort?: number;
  /** When the current run started (epoch ms). */
  startedAt = 0;

  constructor(
    readonly spec: ProcessSpec,
    private readonly onEvent: (name: string, event: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  start(): void {
    this.stopping = false;
    const fd = openSync(this.spec.logFile, 'a');
    const startedAt = Date.now();
    this.startedAt = startedAt;
    const child = spawn(this.spec.command, this.spec.args, {
      env: this.spec.env,
      stdio: ['ignore', fd, fd, ...(this.spec.ipc ? (['ipc'] as const) : [])],
    });
    closeSync(fd);
    this.child = child;
    this.adminPort = undefined;
    this.grpcPort = undefined;
    child.on('message', (message: unknown) => {
      const m = message as { type?: unknown; port?: unknown } | null;
      if (m?.type === 'grpc' && typeof m.port === 'number') this.grpcPort = m.port;
      if (m?.type === 'admin' && typeof m.port === 'number') {
        this.adminPort = m.port;
        this.lastAdminPort = m.port;
        this.onEvent(this.spec.name, `admin port ${m.port}`);
      }
    });
    child.on('error', (err) => this.onEvent(this.spec.name, `could not start: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      const ranMs = Date.now() - startedAt;
      if (ranMs > STABLE_AFTER_MS) this.backoffMs = MIN_BACKOFF_MS;
      this.onEvent(
        this.spec.name,
        `exited (${signal ?? `code ${code}`}); restarting in ${this.backoffMs} ms — see ${this.spec.logFile}`,
      );
      this.restartTimer = setTimeout(() => {
        this.restarts++;
        this.start();
      }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    });
  }

  /** From now on an exit is expected: it is not restarted (e.g. Ctrl-C reached the whole process group). */
  markStopping(): void {
    this.stopping = true;
    clearTimeout(this.restartTimer);
  }

  /** Kills a running process outright (a stuck one); it is restarted like any process that died. */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  /** Asks the process to stop, and kills it if it has not exited within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.markStopping();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(this.spec.stopSignal ?? 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
