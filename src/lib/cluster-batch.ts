import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { isRedisUnavailable, type RedisClient } from './redis.js';

type Call = [name: string, args: unknown[]];

/**
 * A stand-in for a pipeline on a Redis Cluster, for callers that batch commands whose keys live in
 * different slots (the gateway's hot path: one request's limiter bucket and cache entry; many
 * requests' commands together). ioredis refuses such a pipeline, so this records the commands and
 * sends each to its own slot's master; the cluster client's auto-pipelining still groups each
 * node's commands of one tick into one write. `exec` answers like a pipeline's (one
 * `[error, result]` per command, in order) and rejects, like a pipeline whose connection failed,
 * when a command failed because the cluster cannot serve.
 *
 * Atomicity is not lost: a pipeline never gave any across commands; each script stays atomic.
 */
export function clusterBatch(cluster: Cluster): ChainableCommander {
  const calls: Call[] = [];
  const own = {
    get length() {
      return calls.length;
    },
    async exec(): Promise<[Error | null, unknown][]> {
      const send = cluster as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const results = await Promise.all(
        calls.map(([name, args]) =>
          send[name]!(...args).then(
            (value): [Error | null, unknown] => [null, value],
            (err: Error): [Error | null, unknown] => [err, null],
          ),
        ),
      );
      const outage = results.find(([err]) => err && isRedisUnavailable(err));
      if (outage) throw outage[0];
      return results;
    },
  };
  const proxy: unknown = new Proxy(own, {
    get(target, prop) {
      if (prop in target) return target[prop as keyof typeof target];
      // Not a thenable, whatever awaits it.
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      return (...args: unknown[]) => {
        calls.push([prop, args]);
        return proxy;
      };
    },
  });
  return proxy as ChainableCommander;
}

/**
 * A batch of commands to send together: a pipeline on one Redis (one write, one round trip), a
 * {@link clusterBatch} on a Redis Cluster, where a pipeline must keep to one node's slots. The one
 * place the project builds pipelines, so none can span slots unnoticed.
 */
export function pipelineFor(redis: RedisClient): ChainableCommander {
  return redis.isCluster ? clusterBatch(redis as Cluster) : (redis as Redis).pipeline();
}
