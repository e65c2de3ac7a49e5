import type { ModelState } from './backend.js';

export interface ModelSlotOptions<T> {
  load: () => Promise<T>;
  unload: (model: T) => Promise<void>;
  /** Unload after this long without a call; 0 keeps the model loaded until told otherwise. */
  idleUnloadMs: number;
  /** Told of every state change, e.g. to update health or log. */
  onState?: (state: ModelState, error?: unknown) => void;
}

/** Raised by {@link ModelSlot.use} once the slot was retired: the caller should pick another version. */
export class SlotRetiredError extends Error {
  override name = 'SlotRetiredError';
}

/**
 * One loadable model and its lifecycle: loaded lazily by the first call, unloaded after
 * `idleUnloadMs` without calls, and retired by draining (calls in flight finish on it, new
 * calls are refused, then it unloads). Concurrent first calls share one load; a failed load
 * leaves the slot FAILED and the next call tries again.
 */
export class ModelSlot<T> {
  private model?: T;
  private current: ModelState = 'UNLOADED';
  private loading?: Promise<T>;
  private unloading?: Promise<void>;
  private idleTimer?: NodeJS.Timeout;
  private calls = 0;
  private retired = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: ModelSlotOptions<T>) {}

  get state(): ModelState {
    return this.current;
  }

  /** Calls running on this slot now. */
  get inFlight(): number {
    return this.calls;
  }

  /**
   * Runs `fn` with the loaded model, loading it first when needed. The call counts as in flight
   * from the moment `use` is called (synchronously), so a retire that follows waits for it.
   */
  async use<R>(fn: (model: T) => Promise<R>): Promise<R> {
    if (this.retired) throw new SlotRetiredError('this model version is retired');
    this.calls++;
    clearTimeout(this.idleTimer);
    try {
      return await fn(await this.acquire());
    } finally {
      this.calls--;
      if (this.calls === 0) this.onIdle();
    }
  }

  /** Loads now (e.g. to warm up) without running a call. */
  async load(): Promise<void> {
    await this.use(async () => undefined);
  }

  /** Waits for calls in flight, then unloads. Later calls load the model again. */
  async unload(): Promise<void> {
    clearTimeout(this.idleTimer);
    await this.whenIdle();
    await this.unloadNow();
  }

  /** Refuses new calls, lets calls in flight finish, then unloads. */
  async retire(): Promise<void> {
    this.retired = true;
    await this.unload();
  }

  private async acquire(): Promise<T> {
    if (this.unloading) await this.unloading;
    if (this.current === 'READY' && this.model !== undefined) return this.model;
    if (!this.loading) {
      const p = this.loadNow();
      this.loading = p;
      // Cleared after settling, whether or not anyone awaits it.
      p.then(
        () => this.clearLoading(p),
        () => this.clearLoading(p),
      );
    }
    return this.loading;
  }

  private clearLoading(p: Promise<T>): void {
    if (this.loading === p) this.loading = undefined;
  }

  private async loadNow(): Promise<T> {
    this.setState('LOADING');
    try {
      const model = await this.opts.load();
      this.model = model;
      this.setState('READY');
      return model;
    } catch (err) {
      this.model = undefined;
      this.setState('FAILED', err);
      throw err;
    }
  }

  private unloadNow(): Promise<void> {
    if (this.unloading) return this.unloading;
    const model = this.model;
    this.model = undefined;
    if (model === undefined) {
      if (this.current === 'READY') this.setState('UNLOADED');
      return Promise.resolve();
    }
    this.unloading = this.opts.unload(model).finally(() => {
      this.unloading = undefined;
      // A call may have started (and be waiting on `unloading`) meanwhile; it loads afresh.
      if (this.current === 'READY') this.setState('UNLOADED');
    });
    return this.unloading;
  }

  private whenIdle(): Promise<void> {
    if (this.calls === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    if (this.retired || this.opts.idleUnloadMs <= 0 || this.current !== 'READY') return;
    this.idleTimer = setTimeout(() => {
      if (this.calls === 0) void this.unloadNow().catch(() => undefined);
    }, this.opts.idleUnloadMs);
    this.idleTimer.unref();
  }

  private setState(state: ModelState, error?: unknown): void {
    if (state === this.current && error === undefined) return;
    this.current = state;
    this.opts.onState?.(state, error);
  }
}
