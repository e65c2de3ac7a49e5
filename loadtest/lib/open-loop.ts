import { Agent, request } from 'node:http';
import {
  endpointPicker,
  jobStatusRequest,
  judge,
  keyForUser,
  type Planned,
  planRequest,
  type Scenario,
} from '../k6/lib/mix.js';
import type { Sample } from './stats.js';

export interface OpenLoopOptions {
  /** nginx's origin, e.g. http://127.0.0.1:8788 */
  endpoint: string;
  keys: { endpoint: string; keys: { tenant: string; tier: string; key: string }[]; userKeys: number[] };
  scenario: Scenario;
  users: number;
  requestsPerUserPerMinute: number;
  durationS: number;
  /**
   * Requests per second at the start; the rate rises linearly from it to the users' rate over
   * `rampS` (a cold cluster is not hit at full rate from its first second). Default: no ramp.
   */
  fromRatePerS?: number;
  rampS?: number;
  /**
   * Loopback source addresses the users are spread over (127.0.0.1, 127.0.0.2, …), as users
   * come from many addresses: nginx's per-IP limit then holds per address, not for the whole run.
   */
  sourceAddresses: string[];
  /** Requests in flight beyond which an arrival counts as failed at once (the generator's own bound). */
  maxInFlight?: number;
  timeoutMs?: number;
  /** Ends the run early (Ctrl-C). */
  signal?: AbortSignal;
}

/**
 * A light open-loop generator: arrivals come as a Poisson process at the users' combined rate
 * (users × requests per user per minute), whatever the answers' latency, and each request's
 * latency counts from when it was due, so a slow cluster is not hidden by a generator that waits
 * (no coordinated omission). Same mix and checks as the k6 scripts (loadtest/k6/lib/mix.js);
 * node:http with keep-alive, one agent per source address. Returns every request's sample, times
 * relative to `originMs`.
 */
export async function runOpenLoop(o: OpenLoopOptions, originMs: number): Promise<Sample[]> {
  const url = new URL(o.endpoint);
  const maxInFlight = o.maxInFlight ?? 20_000;
  const timeoutMs = o.timeoutMs ?? 20_000;
  const agents = o.sourceAddresses.map(() => new Agent({ keepAlive: true, maxSockets: 512 }));
  const pickEndpoint = endpointPicker(o.scenario.weights);
  const ratePerMs = (o.users * o.requestsPerUserPerMinute) / 60_000;
  const fromPerMs = Math.max(ratePerMs / 100, (o.fromRatePerS ?? 0) / 1000);
  const rampMs = (o.rampS ?? 0) * 1000;
  /** The arrival rate at `now`: a straight line from the start rate to the full one, then flat. */
  const rateAt = (now: number) =>
    rampMs > 0 && now - started < rampMs ? fromPerMs + (ratePerMs - fromPerMs) * ((now - started) / rampMs) : ratePerMs;
  const gap = (at: number) => -Math.log(1 - Math.random()) / rateAt(at);
  // performance.now() is monotonic; sample times are reported on the caller's Date-based origin.
  const origin = performance.now() - (Date.now() - originMs);
  const started = performance.now();
  const endAt = started + o.durationS * 1000;
  const samples: Sample[] = [];
  const tag = Math.random().toString(36).slice(2, 10);
  let unique = 0;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  /** One request, or one job poll waiting for its turn, is over. */
  const release = () => {
    inFlight--;
    if (inFlight === 0) drained?.();
  };

  const send = (req: Planned, user: number, dueAt: number, onJob?: (id: string) => void) => {
    const record = (ok: boolean, category: Sample['category'], kind: string) => {
      samples.push({ t: dueAt - origin, name: req.name, category, latencyMs: performance.now() - dueAt, ok, kind });
    };
    if (inFlight >= maxInFlight) {
      record(false, 'uncached', `generator: over ${maxInFlight} requests in flight`);
      return;
    }
    inFlight++;
    const done = release;
    const address = o.sourceAddresses[user % o.sourceAddresses.length]!;
    const headers: Record<string, string> = { authorization: `Bearer ${keyForUser(o.keys, user)}` };
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(req.body));
    }
    const r = request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers,
        agent: agents[user % agents.length],
        localAddress: address,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const header = res.headers['x-cache'];
          const v = judge(req, res.statusCode ?? 0, Array.isArray(header) ? header[0] : header, text);
          record(v.ok, v.category, v.kind ?? '');
          if (v.ok && v.jobId && !v.jobDone) onJob?.(v.jobId);
          done();
        });
        res.on('error', () => {
          record(false, 'uncached', 'no answer');
          done();
        });
      },
    );
    r.setTimeout(timeoutMs, () => r.destroy(new Error('timeout')));
    r.on('error', () => {
      record(false, req.name === 'nlp' || req.name === 'onnx' ? 'miss' : 'uncached', 'no answer');
      done();
    });
    r.end(req.body);
  };

  /** Polls an accepted job like a client would, until it completes or the polls run out. */
  const poll = (id: string, user: number, left: number) => {
    if (left === 0) {
      samples.push({
        t: performance.now() - origin,
        name: 'job-status',
        category: 'uncached',
        latencyMs: 0,
        ok: false,
        kind: 'not completed in time',
      });
      return;
    }
    inFlight++; // a poll to come keeps the run from ending
    setTimeout(() => {
      send(jobStatusRequest(id), user, performance.now(), () => poll(id, user, left - 1));
      release();
    }, o.scenario.jobPoll.intervalMs);
  };

  let next = started + gap(started);
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < endAt) {
        const user = Math.floor(Math.random() * o.users);
        const req = planRequest(o.scenario, pickEndpoint(Math.random()), {
          repeatShare: o.scenario.repeatShare,
          rand: Math.random,
          unique: () => `${tag}-${unique++}`,
        });
        send(req, user, next, (id) => poll(id, user, o.scenario.jobPoll.maxPolls));
        next += gap(next);
      }
      if (next >= endAt || o.signal?.aborted) resolve();
      else setTimeout(tick, Math.max(0, Math.min(5, next - performance.now())));
    };
    tick();
  });
  // Answers and job polls still due: wait for them (each bounded by timeoutMs), then close the sockets.
  if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
  for (const agent of agents) agent.destroy();
  return samples.sort((a, b) => a.t - b.t);
}
