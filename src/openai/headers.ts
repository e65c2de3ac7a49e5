import type { HeaderSink } from '../gateway/routes/request.js';

/**
 * A header sink that also writes OpenAI's rate-limit headers (`x-ratelimit-limit-requests`,
 * `-remaining-`, `-reset-`, or `-tokens`), which OpenAI clients read to pace themselves, next to
 * the IETF RateLimit-* fields the rest of the API sends.
 */
export function rateLimitHeaders(res: HeaderSink, unit: 'requests' | 'tokens'): HeaderSink {
  return {
    setHeader(name: string, value: string) {
      if (unit === 'requests') res.setHeader(name, value);
      const lower = name.toLowerCase();
      if (lower === 'ratelimit-limit') res.setHeader(`x-ratelimit-limit-${unit}`, value);
      if (lower === 'ratelimit-remaining') res.setHeader(`x-ratelimit-remaining-${unit}`, value);
      // OpenAI writes durations like "6m0s"; seconds with an "s" parse the same way in its clients.
      if (lower === 'ratelimit-reset') res.setHeader(`x-ratelimit-reset-${unit}`, `${value}s`);
    },
  };
}
