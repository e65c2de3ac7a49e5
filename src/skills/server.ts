import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Registry } from 'prom-client';
import { LABELS, METRICS, OTHER } from '../observability/catalogue.js';
import type { Logger } from '../observability/logger.js';
import { bounded, counter, gauge, histogram } from '../observability/metrics.js';
import type { BackendItem, BackendResult, InferContext, SkillBackend } from './backend.js';
import { hostPort } from './advertise.js';
import { createHealthReporter } from './health-reporter.js';
import { freeMemoryBytes } from './memory.js';
import { ModelSlot } from './model-slot.js';
import { inferStreamHandler } from './stream-handler.js';
import {
  SKILL_SERVICE_NAME,
  skillServiceDefinition,
  type WireInferRequest,
  type WireInferResponse,
  type WireSkillMetrics,
  type WireTiming,
} from './proto.js';

/** When the model loads and unloads, and what health requires. */
export interface LifecycleSettings {
  /** Unload after this long without a call; 0: never. */
  idleUnloadMs: number;
  /** NOT_SERVING while free memory (machine or cgroup) is below this; 0: no floor. */
  minFreeMemoryMb: number;
  /** How often health is re-evaluated. */
  healthIntervalMs: number;
  /** How often the backend re-reads its models (`refresh`); 0: only when asked. */
  refreshIntervalMs: number;
}

/** Defaults for a server built without settings (tests): keep models, no floor, no polling. */
const DEFAULT_LIFECYCLE: LifecycleSettings = {
  idleUnloadMs: 0,
  minFreeMemoryMb: 0,
  healthIntervalMs: 1_000,
  refreshIntervalMs: 0,
};

export interface SkillServerDeps {
  name: string;
  backend: SkillBackend;
  logger: Logger;
  registry: Registry;
  lifecycle?: Partial<LifecycleSettings>;
}

export interface SkillServer {
  /**
   * Checks the model can be loaded (`prepare`), binds and reports SERVING; the model itself
   * loads on the first call. Resolves with the bound port.
   */
  start(host: string, port: number): Promise<number>;
  /** NOT_SERVING at once, then lets in-flight calls finish for up to `timeoutMs`, then unloads. */
  stop(timeoutMs: number): Promise<void>;
  /** Asks the backend to re-read its models now (what SIGHUP does). */
  refresh(): Promise<void>;
  readonly health: HealthImplementation;
  /** Throws the reason the skill is not SERVING (for the admin port's `/readyz`); resolves when it is. */
  checkServing(): Promise<void>;
}

/**
 * Hosts one skill backend behind SkillService and grpc.health.v1.Health, and owns the model's
 * lifecycle: lazy load on the first call, unload when idle, health that follows the model
 * state and the free memory.
 */
export function createSkillServer({ name, backend, logger, registry, lifecycle }: SkillServerDeps): SkillServer {
  const settings = { ...DEFAULT_LIFECYCLE, ...lifecycle };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SKILL_SERVICE_NAME]: 'NOT_SERVING' });
  const startedAt = performance.now();
  const counts = { requests: 0, items: 0, errors: 0, inFlight: 0 };
  let phase: 'new' | 'started' | 'stopping' = 'new';
  let refreshTimer: NodeJS.Timeout | undefined;

  const reporter = createHealthReporter({
    health,
    services: ['', SKILL_SERVICE_NAME],
    intervalMs: settings.healthIntervalMs,
    logger,
    probe() {
      if (phase !== 'started') return { serving: false, reason: phase === 'new' ? 'not started' : 'stopping' };
      if (slot.state === 'FAILED' || backend.state() === 'FAILED')
        return { serving: false, reason: 'model failed to load' };
      const freeMb = freeMemoryBytes() / 2 ** 20;
      if (freeMb < settings.minFreeMemoryMb) {
        return {
          serving: false,
          reason: `${Math.round(freeMb)} MB free, under the floor of ${settings.minFreeMemoryMb}`,
        };
      }
      return { serving: true, reason: 'model loaded or loadable, memory to spare' };
    },
  });

  const slot = new ModelSlot<SkillBackend>({
    load: async () => {
      await backend.load();
      return backend;
    },
    unload: (b) => b.unload(),
    idleUnloadMs: settings.idleUnloadMs,
    onState(state, err) {
      if (state === 'FAILED') logger.error({ err }, 'model failed to load');
      else logger.info({ state }, 'model state');
      reporter.update();
    },
  });

  const callSeconds = histogram(registry, METRICS.skillCall);
  const itemsTotal = counter(registry, METRICS.skillItems);
  gauge(registry, METRICS.skillInFlight, function collect() {
    this.set({ skill: name }, counts.inFlight);
  });
  gauge(registry, METRICS.skillServing, function collect() {
    this.set({ skill: name }, reporter.current()?.serving ? 1 : 0);
  });
  gauge(registry, METRICS.modelState, function collect() {
    this.reset();
    for (const { model, version, state } of modelStates())
      for (const s of LABELS.model_state.values)
        this.set({ skill: name, model, version, state: s }, s === state ? 1 : 0);
  });

  /**
   * Every model version the skill serves and its state, and each variant's as `model:variant`
   * (a single-model backend: its model, as the slot says).
   */
  function modelStates(): { model: string; version: string; state: string }[] {
    const d = backend.describe();
    if (d.models)
      return d.models.flatMap((m) =>
        [
          { name: m.name, versions: m.versions },
          ...(m.variants ?? []).map((v) => ({ ...v, name: `${m.name}:${v.name}` })),
        ].flatMap(({ name, versions }) => versions.map((v) => ({ model: name, version: v.version, state: v.state }))),
      );
    const [model = d.model, version = ''] = d.model.split('@');
    return [{ model, version, state: backend.state() === 'FAILED' ? 'FAILED' : slot.state }];
  }

  /** The `model` label of a task: a multi-model backend's model or variant it names (else `other`), or the one model. */
  function modelLabel(task: string): string {
    const d = backend.describe();
    if (d.models) return bounded('model', task, new Set(d.tasks));
    return d.model.split('@')[0] ?? d.model;
  }

  function toItem(req: WireInferRequest): BackendItem {
    const p = req.parameters;
    return {
      id: req.id,
      text: req.input === 'text' ? req.text : undefined,
      tensors: req.input === 'tensors' ? req.tensors?.tensors : undefined,
      task: p?.task || backend.describe().defaultTask,
      maxTokens: p?.maxTokens ?? 0,
      temperature: p?.temperature,
      modelVersion: p?.modelVersion ?? '',
    };
  }

  function toWire(id: string, result: BackendResult, timing: WireTiming): WireInferResponse {
    const model = (result.ok && result.model) || backend.describe().model;
    if (!result.ok) {
      const { code, message, details } = result.error;
      return {
        id,
        error: { code, message, ...(details ? { detailsJson: JSON.stringify(details) } : {}) },
        timing,
        model,
      };
    }
    const out = result.output;
    if ('text' in out) return { id, text: out.text, timing, model };
    if ('json' in out) return { id, json: JSON.stringify(out.json), timing, model };
    return { id, tensors: { tensors: out.tensors }, timing, model };
  }

  /** Runs a batch through the backend; per-item failures stay in their items. */
  async function compute(reqs: WireInferRequest[], method: string, context: InferContext) {
    const t0 = performance.now();
    counts.requests++;
    counts.inFlight++;
    try {
      let c0 = 0;
      const batch = reqs.map(toItem);
      // Compute time starts once the model is loaded: a cold start shows in total_us only.
      const results = await slot.use((b) => {
        c0 = performance.now();
        return b.inferBatch(batch, context);
      });
      const computeUs = Math.round((performance.now() - c0) * 1000);
      const timing = (): WireTiming => ({
        computeUs,
        totalUs: Math.round((performance.now() - t0) * 1000),
        batchSize: reqs.length,
      });
      const items = reqs.map((r, i) => {
        const result: BackendResult = results[i] ?? {
          ok: false,
          error: { code: 'SKILL_ERROR', message: 'the backend returned no result for this item' },
        };
        itemsTotal.inc({ skill: name, model: modelLabel(batch[i]!.task), outcome: result.ok ? 'ok' : 'error' });
        if (!result.ok) counts.errors++;
        return toWire(r.id, result, timing());
      });
      counts.items += reqs.length;
      return { items, timing: timing() };
    } finally {
      counts.inFlight--;
      const model = reqs[0] ? modelLabel(toItem(reqs[0]).task) : OTHER;
      callSeconds.observe({ skill: name, model, method }, (performance.now() - t0) / 1000);
    }
  }

  /** The call's deadline, and a signal that fires when the caller cancels or the deadline passes. */
  function callContext(call: grpc.ServerUnaryCall<unknown, unknown>): InferContext {
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort());
    const d = call.getDeadline();
    const deadline = d instanceof Date ? d.getTime() : Number.isFinite(d) ? d : undefined;
    return { deadline, signal: controller.signal };
  }

  function failure(): Partial<grpc.StatusObject> {
    const unavailable = slot.state !== 'READY';
    return {
      code: unavailable ? grpc.status.UNAVAILABLE : grpc.status.INTERNAL,
      details: unavailable ? 'model is not loaded' : 'the model failed on this call',
    };
  }

  function fail<T>(callback: grpc.sendUnaryData<T>, err: unknown): void {
    counts.errors++;
    logger.error({ err }, 'skill call failed');
    callback(failure());
  }

  /** One streamed item: the backend's stream, or its one result when it cannot stream. */
  async function stream(item: BackendItem, context: InferContext, onDelta: (text: string) => void) {
    counts.requests++;
    counts.inFlight++;
    const t0 = performance.now();
    try {
      const result = await slot.use(async (b): Promise<BackendResult> => {
        if (b.inferStream) return b.inferStream(item, context, onDelta);
        const [one] = await b.inferBatch([item], context);
        return one ?? { ok: false, error: { code: 'SKILL_ERROR', message: 'the backend returned no result' } };
      });
      counts.items++;
      if (!result.ok) counts.errors++;
      itemsTotal.inc({ skill: name, model: modelLabel(item.task), outcome: result.ok ? 'ok' : 'error' });
      return result;
    } catch (err) {
      counts.errors++;
      throw err;
    } finally {
      counts.inFlight--;
      callSeconds.observe(
        { skill: name, model: modelLabel(item.task), method: 'InferStream' },
        (performance.now() - t0) / 1000,
      );
    }
  }

  server.addService(skillServiceDefinition().service, {
    Infer(
      call: grpc.ServerUnaryCall<WireInferRequest, WireInferResponse>,
      callback: grpc.sendUnaryData<WireInferResponse>,
    ) {
      compute([call.request], 'Infer', callContext(call)).then(
        (r) => callback(null, r.items[0]),
        (err) => fail(callback, err),
      );
    },
    InferBatch(
      call: grpc.ServerUnaryCall<{ items: WireInferRequest[] }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      if (call.request.items.length === 0) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: 'InferBatch needs at least one item' });
        return;
      }
      compute(call.request.items, 'InferBatch', callContext(call)).then(
        (r) => callback(null, r),
        (err) => fail(callback, err),
      );
    },
    InferStream: inferStreamHandler({ run: stream, toItem, toWire, failure, logger }),
    GetMetrics(_call: grpc.ServerUnaryCall<unknown, WireSkillMetrics>, callback: grpc.sendUnaryData<WireSkillMetrics>) {
      const d = backend.describe();
      callback(null, {
        skill: name,
        backend: d.backend,
        model: d.model,
        tasks: [...d.tasks],
        modelState: slot.state,
        requestsTotal: counts.requests,
        itemsTotal: counts.items,
        errorsTotal: counts.errors,
        inFlight: counts.inFlight,
        uptimeS: (performance.now() - startedAt) / 1000,
        rssBytes: process.memoryUsage.rss(),
        deterministic: d.deterministic,
        models: d.models
          ? d.models.flatMap((m) => m.versions.map((v) => ({ name: m.name, version: v.version, state: v.state })))
          : [{ name: d.model.replace(/@[^@]*$/, ''), version: d.model.replace(/^.*@/, ''), state: slot.state }],
      });
    },
  });
  health.addToServer(server);

  return {
    health,
    async checkServing() {
      const verdict = reporter.current();
      if (!verdict?.serving) throw new Error(verdict?.reason ?? 'not started');
    },
    async start(host, port) {
      await backend.prepare?.();
      const bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(hostPort(host, port), grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        );
      });
      phase = 'started';
      reporter.start();
      if (backend.refresh && settings.refreshIntervalMs > 0) {
        refreshTimer = setInterval(() => {
          backend.refresh?.().catch((err: unknown) => logger.warn({ err }, 'refreshing the models failed'));
        }, settings.refreshIntervalMs);
        refreshTimer.unref();
      }
      return bound;
    },
    async refresh() {
      await backend.refresh?.();
    },
    async stop(timeoutMs) {
      phase = 'stopping';
      clearInterval(refreshTimer);
      reporter.stop();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await slot.unload();
    },
  };
}
