import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { fromGrpcError } from './grpc-errors.js';
import {
  skillServiceDefinition,
  type WireInferBatchResponse,
  type WireInferRequest,
  type WireInferResponse,
  type WireSkillMetrics,
  type WireStreamChunk,
} from './proto.js';

type Unary<Req, Res> = (
  req: Req,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

interface RawSkillClient extends grpc.Client {
  Infer: Unary<WireInferRequest, WireInferResponse>;
  InferStream: (
    req: WireInferRequest,
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
  ) => grpc.ClientReadableStream<WireStreamChunk>;
  InferBatch: Unary<{ items: WireInferRequest[] }, WireInferBatchResponse>;
  GetMetrics: Unary<Record<string, never>, WireSkillMetrics>;
}

interface RawHealthClient extends grpc.Client {
  Check: Unary<{ service: string }, { status: string }>;
}

let healthCtor: grpc.ServiceClientConstructor | undefined;
/** A client for the standard grpc.health.v1.Health, from the definition grpc-health-check ships. */
function healthClientConstructor(): grpc.ServiceClientConstructor {
  healthCtor ??= grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  return healthCtor;
}

export interface SkillClientOptions {
  /**
   * gRPC channels (each its own HTTP/2 connection) to the replica. One grpc-js channel carries
   * every call on one connection and can cap a busy caller's calls/s before its CPU does;
   * `npm run bench:channels` compares 1 and 4.
   */
  channels?: number;
  /**
   * HTTP/2 keepalive while calls are in flight: a PING unanswered for this long closes the
   * connection and fails its calls UNAVAILABLE, so a hung replica (SIGSTOP, a wedged event loop)
   * costs its callers seconds, not their whole deadline. Unset: no keepalive.
   */
  keepaliveMs?: number;
}

interface Channel {
  client: RawSkillClient;
  outstanding: number;
}

/**
 * One skill replica over a few gRPC channels; each call takes the channel with the fewest calls
 * in flight. Every failure comes back as an AppError (mapped once, in {@link fromGrpcError}).
 */
export class SkillClient {
  private readonly channels: Channel[];
  private readonly health: RawHealthClient;
  private next = 0;
  /** Calls sent and not yet answered: the pool routes to the replica with the fewest. */
  outstanding = 0;

  constructor(
    readonly skill: string,
    readonly address: string,
    options: SkillClientOptions = {},
  ) {
    const Ctor = skillServiceDefinition();
    const count = Math.max(1, options.channels ?? 1);
    this.channels = Array.from({ length: count }, () => ({
      client: new Ctor(address, grpc.credentials.createInsecure(), {
        // Fail a call at once when the replica is down instead of waiting for a reconnect.
        'grpc.enable_retries': 0,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
        // grpc-js shares one connection among channels with identical options through a global
        // subchannel pool; a pool per channel makes each channel its own connection.
        'grpc.use_local_subchannel_pool': 1,
        ...(options.keepaliveMs
          ? { 'grpc.keepalive_time_ms': options.keepaliveMs, 'grpc.keepalive_timeout_ms': options.keepaliveMs }
          : {}),
      }) as unknown as RawSkillClient,
      outstanding: 0,
    }));
    // Health checks ride the first channel's HTTP/2 connection.
    const HealthCtor = healthClientConstructor();
    this.health = new HealthCtor(address, grpc.credentials.createInsecure(), {
      channelOverride: this.channels[0]!.client.getChannel(),
    }) as unknown as RawHealthClient;
  }

  /** Number of gRPC channels to the replica. */
  get channelCount(): number {
    return this.channels.length;
  }

  infer(req: WireInferRequest, deadlineMs: number): Promise<WireInferResponse> {
    const ch = this.channel();
    return this.call(ch, ch.client.Infer.bind(ch.client), req, deadlineMs);
  }

  inferBatch(items: WireInferRequest[], deadlineMs: number): Promise<WireInferBatchResponse> {
    const ch = this.channel();
    return this.call(ch, ch.client.InferBatch.bind(ch.client), { items }, deadlineMs);
  }

  /**
   * InferStream: each text delta to `onDelta` as the skill sends it; resolves with the last
   * message's whole result. `signal` cancels the call (and so the skill's work).
   */
  inferStream(
    req: WireInferRequest,
    deadlineMs: number,
    onDelta: (text: string) => void,
    signal?: AbortSignal,
  ): Promise<WireInferResponse> {
    const ch = this.channel();
    this.outstanding++;
    ch.outstanding++;
    return new Promise<WireInferResponse>((resolve, reject) => {
      const call = ch.client.InferStream(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
      const cancel = () => call.cancel();
      signal?.addEventListener('abort', cancel, { once: true });
      let final: WireInferResponse | undefined;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        this.outstanding--;
        ch.outstanding--;
        signal?.removeEventListener('abort', cancel);
        fn();
      };
      call.on('data', (chunk: WireStreamChunk) => {
        if (chunk.final) final = chunk.final;
        else if (chunk.delta) onDelta(chunk.delta);
      });
      call.on('error', (err: grpc.ServiceError) => settle(() => reject(fromGrpcError(err, this.skill))));
      call.on('end', () =>
        settle(() =>
          final
            ? resolve(final)
            : reject(fromGrpcError({ code: grpc.status.INTERNAL } as grpc.ServiceError, this.skill)),
        ),
      );
    });
  }

  metrics(deadlineMs: number): Promise<WireSkillMetrics> {
    const ch = this.channel();
    return this.call(ch, ch.client.GetMetrics.bind(ch.client), {}, deadlineMs);
  }

  /** Standard grpc.health.v1 Check; resolves with SERVING, NOT_SERVING, … */
  async check(deadlineMs: number, service = ''): Promise<string> {
    const res = await this.call(this.channels[0]!, this.health.Check.bind(this.health), { service }, deadlineMs);
    return res.status;
  }

  close(): void {
    for (const ch of this.channels) ch.client.close();
  }

  /** The channel with the fewest calls in flight, taking turns among equals. */
  private channel(): Channel {
    const n = this.channels.length;
    const start = this.next;
    this.next = (this.next + 1) % n;
    let best = this.channels[start]!;
    for (let i = 1; i < n && best.outstanding > 0; i++) {
      const ch = this.channels[(start + i) % n]!;
      if (ch.outstanding < best.outstanding) best = ch;
    }
    return best;
  }

  private call<Req, Res>(ch: Channel, fn: Unary<Req, Res>, req: Req, deadlineMs: number): Promise<Res> {
    this.outstanding++;
    ch.outstanding++;
    return new Promise<Res>((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        this.outstanding--;
        ch.outstanding--;
        if (err) reject(fromGrpcError(err, this.skill));
        else resolve(res);
      });
    });
  }
}
