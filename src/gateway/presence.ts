import type { RedisClient } from '../lib/redis.js';

/**
 * Each gateway notes itself in Redis every `intervalMs`, and counts the others. The count sizes
 * the local rate-limit fallback (limit ÷ live gateways) while Redis is down, so it keeps the
 * last value it saw.
 */
export class GatewayPresence {
  private timer?: NodeJS.Timeout;
  private live = 1;
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly instance: string,
    private readonly intervalMs: number,
  ) {
    this.key = `${keyPrefix}:gateways`;
  }

  count(): number {
    return this.live;
  }

  async beat(): Promise<void> {
    const now = Date.now();
    const [, res] = (await this.redis
      .multi()
      .hset(this.key, this.instance, String(now + this.intervalMs * 3))
      .hgetall(this.key)
      .exec()) ?? [[], [null, {}]];
    const all = (res?.[1] ?? {}) as Record<string, string>;
    const gone = Object.keys(all).filter((k) => Number(all[k]) <= now);
    this.live = Math.max(1, Object.keys(all).length - gone.length);
    if (gone.length > 0) await this.redis.hdel(this.key, ...gone);
  }

  start(): void {
    this.timer = setInterval(() => void this.beat().catch(() => undefined), this.intervalMs);
    this.timer.unref();
    void this.beat().catch(() => undefined);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.hdel(this.key, this.instance).catch(() => undefined);
  }
}
