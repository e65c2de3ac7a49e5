import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { fromGrpcError } from './grpc-errors.js';
import {
  skillServiceDefinition,
  type WireInferBatchResponse,
  type WireInferRequest,
  type WireInferResponse,
  type WireSkillMetrics,
} from './proto.js';

type Unary<Req, Res> = (
  req: Req,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

interface RawSkillClient extends grpc.Client {
  Infer: Unary<WireInferRequest, WireInferResponse>;
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

/**
 * One skill replica over one gRPC channel. Every failure comes back as an AppError
 * (mapped once, in {@link fromGrpcError}).
 */
export class SkillClient {
  private readonly client: RawSkillClient;
  private readonly health: RawHealthClient;
  /** Calls sent and not yet answered: the pool routes to the replica with the fewest. */
  outstanding = 0;

  constructor(
    readonly skill: string,
    readonly address: string,
  ) {
    const Ctor = skillServiceDefinition();
    this.client = new Ctor(address, grpc.credentials.createInsecure(), {
      // Fail a call at once when the replica is down instead of waiting for a reconnect.
      'grpc.enable_retries': 0,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
    }) as unknown as RawSkillClient;
    // Share the channel: health checks ride the same HTTP/2 connection.
    const HealthCtor = healthClientConstructor();
    this.health = new HealthCtor(address, grpc.credentials.createInsecure(), {
      channelOverride: this.client.getChannel(),
    }) as unknown as RawHealthClient;
  }

  infer(req: WireInferRequest, deadlineMs: number): Promise<WireInferResponse> {
    return this.call(this.client.Infer.bind(this.client), req, deadlineMs);
  }

  inferBatch(items: WireInferRequest[], deadlineMs: number): Promise<WireInferBatchResponse> {
    return this.call(this.client.InferBatch.bind(this.client), { items }, deadlineMs);
  }

  metrics(deadlineMs: number): Promise<WireSkillMetrics> {
    return this.call(this.client.GetMetrics.bind(this.client), {}, deadlineMs);
  }

  /** Standard grpc.health.v1 Check; resolves with SERVING, NOT_SERVING, … */
  async check(deadlineMs: number, service = ''): Promise<string> {
    const res = await this.call(this.health.Check.bind(this.health), { service }, deadlineMs);
    return res.status;
  }

  close(): void {
    this.client.close();
  }

  private call<Req, Res>(fn: Unary<Req, Res>, req: Req, deadlineMs: number): Promise<Res> {
    this.outstanding++;
    return new Promise<Res>((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        this.outstanding--;
        if (err) reject(fromGrpcError(err, this.skill));
        else resolve(res);
      });
    });
  }
}
