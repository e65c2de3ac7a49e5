// @ts-check
/**
 * The load tests' request mix, shared by the k6 scripts and the Node open-loop generator
 * (loadtest/lib/open-loop.ts): which endpoint a user calls, the request it sends (a repeat the
 * cache should answer, or a unique input it cannot), and whether the answer is right. Plain ES
 * module, no k6 or Node imports, so both runtimes load it as it is. loadtest/locustfile.py does
 * the same in Python from the same loadtest/scenario.json.
 */

/** @typedef {'nlp' | 'onnx' | 'recall' | 'assert' | 'job'} Endpoint */
/** @typedef {Endpoint | 'job-status'} RequestName */
/** @typedef {'hit' | 'miss' | 'uncached'} Category */

/**
 * @typedef {object} Profile
 * @property {number} users
 * @property {number} requestsPerUserPerMinute
 * @property {number} durationS
 * @property {number} rampS
 * @property {number} [spikeFactor]
 * @property {{ p95Ms?: number, maxErrorRate?: number, minCacheHits?: number }} thresholds
 */

/**
 * @typedef {object} Scenario
 * @property {Record<string, Profile>} profiles
 * @property {{ p95Ms: number, maxErrorRate: number }} goal
 * @property {number} repeatShare
 * @property {Record<Endpoint, number>} weights
 * @property {Record<'free' | 'standard' | 'premium', number>} tiers
 * @property {number} keysPerTenant
 * @property {number} limitHeadroom
 * @property {{ intervalMs: number, maxPolls: number }} jobPoll
 * @property {{ tasks: string[], repeats: string[], unique: string[] }} nlp
 * @property {{ model: string, input: string, repeats: number[][] }} onnx
 * @property {{ subjects: string[], verbs: string[], objects: string[] }} memory
 */

/**
 * @typedef {object} Planned
 * @property {RequestName} name
 * @property {'GET' | 'POST'} method
 * @property {string} path
 * @property {string} [body]
 * @property {boolean} repeat  a request the cache should answer (after its first time for the tenant)
 */

/**
 * @typedef {object} Verdict
 * @property {boolean} ok
 * @property {Category} category
 * @property {string} [kind]   why it failed: `429 RATE_LIMITED`, `bad body`, …
 * @property {string} [jobId]  an accepted async job, to poll
 * @property {boolean} [jobDone]
 */

/** @type {Endpoint[]} */
export const ENDPOINTS = ['nlp', 'onnx', 'recall', 'assert', 'job'];

/**
 * Picks an endpoint by weight from a uniform number in [0, 1).
 * @param {Record<Endpoint, number>} weights
 * @returns {(r: number) => Endpoint}
 */
export function endpointPicker(weights) {
  const total = ENDPOINTS.reduce((sum, e) => sum + Math.max(0, weights[e] ?? 0), 0);
  if (!(total > 0)) throw new Error('weights: at least one endpoint needs a positive weight');
  /** @type {[number, Endpoint][]} */
  const edges = [];
  let acc = 0;
  for (const e of ENDPOINTS) {
    const w = Math.max(0, weights[e] ?? 0);
    if (w === 0) continue;
    acc += w / total;
    edges.push([acc, e]);
  }
  return (r) => {
    for (const [edge, e] of edges) if (r < edge) return e;
    return /** @type {Endpoint} */ (edges[edges.length - 1]?.[1]);
  };
}

/**
 * Parses `nlp=55,onnx=25,…` (what the tools take on their command lines) over the scenario's weights.
 * @param {string | undefined} text
 * @param {Record<Endpoint, number>} base
 * @returns {Record<Endpoint, number>}
 */
export function parseWeights(text, base) {
  const out = { ...base };
  if (!text) return out;
  for (const part of text.split(',')) {
    const [name, value] = part.split('=').map((s) => s.trim());
    const n = Number(value);
    if (!ENDPOINTS.includes(/** @type {Endpoint} */ (name)) || !Number.isFinite(n) || n < 0) {
      throw new Error(`weights: "${part}" is not <endpoint>=<weight ≥ 0> with endpoint one of ${ENDPOINTS.join(', ')}`);
    }
    out[/** @type {Endpoint} */ (name)] = n;
  }
  return out;
}

/**
 * @template T
 * @param {T[]} list
 * @param {() => number} rand
 * @returns {T}
 */
function pick(list, rand) {
  return /** @type {T} */ (list[Math.floor(rand() * list.length)]);
}

/**
 * The request a user sends to `endpoint`. `unique` makes the input of a unique request
 * (e.g. `${run}-${counter}`): nothing else ever sends it, so no cache can answer it.
 * @param {Scenario} s
 * @param {Endpoint} endpoint
 * @param {{ repeatShare: number, rand: () => number, unique: () => string }} opts
 * @returns {Planned}
 */
export function planRequest(s, endpoint, opts) {
  const { rand } = opts;
  const repeat = rand() < opts.repeatShare;
  const nlpBody = () => {
    const task = pick(s.nlp.tasks, rand);
    const input = repeat ? pick(s.nlp.repeats, rand) : pick(s.nlp.unique, rand).replace('{n}', opts.unique());
    return { input, task };
  };
  switch (endpoint) {
    case 'nlp':
      return { name: 'nlp', method: 'POST', path: '/v1/skills/nlp/infer', body: JSON.stringify(nlpBody()), repeat };
    case 'onnx': {
      const data = repeat
        ? pick(s.onnx.repeats, rand)
        : [0, 1, 2, 3].map(() => Math.round((rand() * 8 - 4) * 1e6) / 1e6);
      const body = {
        model: s.onnx.model,
        inputs: [{ name: s.onnx.input, datatype: 'FP32', shape: [1, data.length], data }],
      };
      return { name: 'onnx', method: 'POST', path: '/v1/skills/onnx/infer', body: JSON.stringify(body), repeat };
    }
    case 'recall': {
      const subject = encodeURIComponent(pick(s.memory.subjects, rand));
      return { name: 'recall', method: 'GET', path: `/v1/memory/triples?subject=${subject}&limit=10`, repeat: false };
    }
    case 'assert': {
      const m = s.memory;
      const triple = { subject: pick(m.subjects, rand), verb: pick(m.verbs, rand), object: pick(m.objects, rand) };
      const body = JSON.stringify({ ...triple, confidence: 0.6, source: 'loadtest' });
      return { name: 'assert', method: 'POST', path: '/v1/memory/triples', body, repeat: false };
    }
    case 'job':
      // Jobs are never answered from the cache; a unique input keeps them from sharing work too.
      return {
        name: 'job',
        method: 'POST',
        path: '/v1/jobs',
        body: JSON.stringify({ skill: 'nlp', ...nlpBody() }),
        repeat: false,
      };
  }
}

/**
 * The poll of an accepted async job.
 * @param {string} id
 * @returns {Planned}
 */
export function jobStatusRequest(id) {
  return { name: 'job-status', method: 'GET', path: `/v1/jobs/${encodeURIComponent(id)}`, repeat: false };
}

/**
 * Checks an answer: status, body shape and `X-Cache`; says whether the cache served it.
 * @param {Planned} req
 * @param {number} status  0 when no answer came (connection error, time-out)
 * @param {string | undefined | null} xCache
 * @param {string | null | undefined} text
 * @returns {Verdict}
 */
export function judge(req, status, xCache, text) {
  const cached = req.name === 'nlp' || req.name === 'onnx';
  /** @type {Category} */
  const category = !cached ? 'uncached' : xCache === 'HIT' || xCache === 'STALE' ? 'hit' : 'miss';
  /** @param {string} kind @returns {Verdict} */
  const fail = (kind) => ({ ok: false, category, kind });
  if (status === 0) return fail('no answer');
  /** @type {any} */
  let body;
  try {
    body = JSON.parse(text ?? '');
  } catch {
    return fail(`${status} body is not JSON`);
  }
  if (status >= 400 || status < 200) {
    const code = body && body.error && typeof body.error.code === 'string' ? body.error.code : 'no error code';
    return fail(`${status} ${code}`);
  }
  switch (req.name) {
    case 'nlp':
    case 'onnx': {
      if (xCache !== 'HIT' && xCache !== 'MISS' && xCache !== 'STALE') return fail(`X-Cache is ${xCache ?? 'missing'}`);
      if (category === 'hit' && !req.repeat) return fail('a unique input answered from the cache');
      const shaped =
        status === 200 &&
        (req.name === 'nlp'
          ? body && typeof body.output === 'object' && body.output !== null
          : body && Array.isArray(body.outputs) && body.outputs.length > 0);
      return shaped ? { ok: true, category } : fail(`${status} unexpected body`);
    }
    case 'recall':
      return status === 200 && body && Array.isArray(body.triples) ? { ok: true, category } : fail('unexpected body');
    case 'assert':
      return (status === 200 || status === 201) && body && Array.isArray(body.triples) && body.triples.length === 1
        ? { ok: true, category }
        : fail('unexpected body');
    case 'job':
      return (status === 202 || status === 200) && body && typeof body.id === 'string'
        ? { ok: true, category, jobId: body.id, jobDone: body.status === 'completed' }
        : fail('unexpected body');
    case 'job-status': {
      if (status !== 200 || !body || typeof body.status !== 'string') return fail('unexpected body');
      if (body.status === 'failed') return fail(`job failed: ${(body.error && body.error.code) || 'no code'}`);
      if (body.status === 'completed' && (typeof body.output !== 'object' || body.output === null)) {
        return fail('completed job without output');
      }
      return { ok: true, category, jobDone: body.status === 'completed' };
    }
  }
}

/**
 * @typedef {object} KeysFile
 * @property {string} endpoint
 * @property {{ tenant: string, tier: string, key: string }[]} keys
 * @property {number[]} userKeys  index into `keys` of each user, in user order
 */

/**
 * The API key of user number `user`; users beyond the file's wrap around.
 * @param {KeysFile} keys
 * @param {number} user
 * @returns {string}
 */
export function keyForUser(keys, user) {
  const n = keys.userKeys.length;
  const index = n > 0 ? keys.userKeys[((user % n) + n) % n] : 0;
  const entry = keys.keys[index ?? 0];
  if (!entry) throw new Error('the keys file has no keys');
  return entry.key;
}
