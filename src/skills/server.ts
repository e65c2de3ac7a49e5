import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { BackendItem, BackendResult, InferContext, SkillBackend } from './backend.js';
import {
  SKILL_SERVICE_NAME,
  skillServiceDefinition,
  type WireInferRequest,
  type WireInferResponse,
  type WireSkillMetrics,
  type WireTiming,
} from './proto.js';

export interface SkillServerDeps {
  name: string;
  backend: SkillBackend;
  logger: Logger;
  registry: Registry;
}

export interface SkillServer {
  /** Binds, loads the model, then reports SERVING. Resolves with the bound port. */
  start(host: string, port: number): Promise<number>;
  /** NOT_SERVING at once, then lets in-flight calls finish for up to `timeoutMs`. */
  stop(timeoutMs: number): Promise<void>;
  readonly health: HealthImplementation;
}

/** Hosts one skill backend behind SkillService and grpc.health.v1.Health. */
export function createSkillServer({ name, backend, logger, registry }: SkillServerDeps): SkillServer {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SKILL_SERVICE_NAME]: 'NOT_SERVING' });
  const startedAt = performance.now();
  const counts = { requests: 0, items: 0, errors: 0, inFlight: 0 };

  const labels = ['skill', 'method'] as const;
  const callSeconds = new Histogram({
    name: 'skill_call_duration_seconds',
    help: 'Time a skill spent on one gRPC call',
    labelNames: labels,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const itemsTotal = new Counter({
    name: 'skill_items_total',
    help: 'Items computed, by outcome',
    labelNames: ['skill', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'skill_model_loaded',
    help: '1 when the model is loaded and ready',
    labelNames: ['skill'] as const,
    registers: [registry],
    collect() {
      this.set({ skill: name }, backend.state() === 'READY' ? 1 : 0);
    },
  });

  function setServing(serving: boolean): void {
    const status = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', status);
    health.setStatus(SKILL_SERVICE_NAME, status);
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
    const model = backend.describe().model;
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
      const c0 = performance.now();
      const results = await backend.inferBatch(reqs.map(toItem), context);
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
        itemsTotal.inc({ skill: name, outcome: result.ok ? 'ok' : 'error' });
        if (!result.ok) counts.errors++;
        return toWire(r.id, result, timing());
      });
      counts.items += reqs.length;
      return { items, timing: timing() };
    } finally {
      counts.inFlight--;
      callSeconds.observe({ skill: name, method }, (performance.now() - t0) / 1000);
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

  function fail<T>(callback: grpc.sendUnaryData<T>, err: unknown): void {
    counts.errors++;
    logger.error({ err }, 'skill call failed');
    const unavailable = backend.state() !== 'READY';
    callback({
      code: unavailable ? grpc.status.UNAVAILABLE : grpc.status.INTERNAL,
      details: unavailable ? 'model is not loaded' : 'the model failed on this call',
    });
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
    GetMetrics(_call: grpc.ServerUnaryCall<unknown, WireSkillMetrics>, callback: grpc.sendUnaryData<WireSkillMetrics>) {
      const d = backend.describe();
      callback(null, {
        skill: name,
        backend: d.backend,
        model: d.model,
        tasks: [...d.tasks],
        modelState: backend.state(),
        requestsTotal: counts.requests,
        itemsTotal: counts.items,
        errorsTotal: counts.errors,
        inFlight: counts.inFlight,
        uptimeS: (performance.now() - startedAt) / 1000,
        rssBytes: process.memoryUsage.rss(),
        deterministic: d.deterministic,
      });
    },
  });
  health.addToServer(server);

  return {
    health,
    async start(host, port) {
      const bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        );
      });
      await backend.load();
      setServing(true);
      return bound;
    },
    async stop(timeoutMs) {
      setServing(false);
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
      await backend.unload();
    },
  };
}
