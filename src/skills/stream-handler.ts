import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';
import type { BackendItem, BackendResult, InferContext } from './backend.js';
import type { WireInferRequest, WireInferResponse, WireStreamChunk, WireTiming } from './proto.js';

export interface StreamHandlerDeps {
  /** The item through the (loaded) backend: streamed when it can, else its one result. */
  run(item: BackendItem, context: InferContext, onDelta: (text: string) => void): Promise<BackendResult>;
  toItem(req: WireInferRequest): BackendItem;
  toWire(id: string, result: BackendResult, timing: WireTiming): WireInferResponse;
  /** The status a failed call ends with (UNAVAILABLE while the model is not loaded). */
  failure(err: unknown): grpc.StatusObject | Partial<grpc.StatusObject>;
  logger: Logger;
}

/**
 * SkillService.InferStream: each delta the backend produces goes out as its own message, then the
 * whole result. The caller cancelling the call (or its deadline passing) aborts the backend's
 * work — for the openai backend, the upstream request.
 */
export function inferStreamHandler(deps: StreamHandlerDeps) {
  return function InferStream(call: grpc.ServerWritableStream<WireInferRequest, WireStreamChunk>): void {
    const t0 = performance.now();
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort());
    const d = call.getDeadline();
    const deadline = d instanceof Date ? d.getTime() : Number.isFinite(d) ? d : undefined;
    let computeStart = 0;
    const onDelta = (delta: string) => {
      if (computeStart === 0) computeStart = performance.now();
      if (!controller.signal.aborted && delta.length > 0) call.write({ delta });
    };
    deps.run(deps.toItem(call.request), { deadline, signal: controller.signal }, onDelta).then(
      (result) => {
        if (controller.signal.aborted) return;
        const now = performance.now();
        const timing = {
          computeUs: Math.round((now - (computeStart || t0)) * 1000),
          totalUs: Math.round((now - t0) * 1000),
          batchSize: 1,
        };
        call.write({ final: deps.toWire(call.request.id, result, timing) });
        call.end();
      },
      (err: unknown) => {
        deps.logger.error({ err }, 'skill stream failed');
        if (!controller.signal.aborted) call.emit('error', deps.failure(err));
      },
    );
  };
}
