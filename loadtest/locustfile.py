"""skillserve under the product brief's load, for Locust (2.12+, Debian's python3-locust).

Users behave like the brief's: each sends N requests a minute (Poisson arrivals, so users do not
march in step), a share of them repeats that the cache should answer and the rest unique inputs,
over the endpoints of loadtest/scenario.json by weight (nlp infer, onnx tensors, memory recall
and assert, async jobs). Users are spread over the tenants and keys of mixed tiers that
`npm run loadtest:keys -- create` wrote (LOADTEST_KEYS), so that no key reaches its tier's limit.

Every answer is checked (status, body shape, X-Cache); hits and misses are reported as their own
rows ("nlp [hit]", "nlp [miss]"). The run exits 1 when a threshold fails (p95, error rate, cache
hits), so CI and people can gate on it.

    npm run loadtest:keys -- create --users 1000
    locust -f loadtest/locustfile.py --headless -u 1000 -r 50 -t 4m
    npm run loadtest:keys -- remove

`npm run loadtest` does all three and more (server-side view, CPU, docs); see the README.
Options (also as environment variables): --keys-file, --profile, --rate-per-user,
--repeat-share, --weights, --p95-ms, --max-error-rate, --min-cache-hits, --samples-dir.
"""

import itertools
import json
import logging
import os
import random
import time
import uuid

from locust import FastHttpUser, events, task
from locust.runners import MasterRunner, WorkerRunner

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = json.load(open(os.path.join(HERE, "scenario.json"), encoding="utf-8"))
ENDPOINTS = ["nlp", "onnx", "recall", "assert", "job"]
log = logging.getLogger("skillserve.loadtest")


@events.init_command_line_parser.add_listener
def add_options(parser):
    group = parser.add_argument_group("skillserve load test")
    group.add_argument("--keys-file", env_var="LOADTEST_KEYS", default=os.path.join(".run", "loadtest", "keys.json"),
                       help="keys written by `npm run loadtest:keys -- create`")
    group.add_argument("--api-key", env_var="LOADTEST_KEY", default="",
                       help="one key for every user instead of a keys file (mind its tier's limit)")
    group.add_argument("--profile", env_var="LOADTEST_PROFILE", default="brief",
                       help="profile of loadtest/scenario.json: brief, smoke, spike, soak")
    group.add_argument("--rate-per-user", env_var="LOADTEST_RATE", type=float, default=0,
                       help="requests per user per minute (default: the profile's)")
    group.add_argument("--repeat-share", env_var="LOADTEST_REPEAT_SHARE", type=float, default=-1,
                       help="share of requests that repeat an earlier input (default: the scenario's)")
    group.add_argument("--weights", env_var="LOADTEST_WEIGHTS", default="",
                       help="endpoint weights, e.g. nlp=55,onnx=25,recall=10,assert=5,job=5")
    group.add_argument("--p95-ms", env_var="LOADTEST_P95_MS", type=float, default=-1,
                       help="fail the run when p95 is not below this (default: the profile's)")
    group.add_argument("--max-error-rate", env_var="LOADTEST_MAX_ERROR_RATE", type=float, default=-1,
                       help="fail the run above this share of failed requests (default: the profile's)")
    group.add_argument("--min-cache-hits", env_var="LOADTEST_MIN_CACHE_HITS", type=int, default=-1,
                       help="fail the run with fewer answers from the cache (default: the profile's)")
    group.add_argument("--samples-dir", env_var="LOADTEST_SAMPLES", default="",
                       help="also write every request's timing to <dir>/samples-<pid>.csv")


class Settings:
    """The options, resolved once per process against the scenario and the keys file."""

    def __init__(self, options):
        profile = SCENARIO["profiles"].get(options.profile)
        if profile is None:
            raise SystemExit(f"--profile {options.profile}: not one of {', '.join(SCENARIO['profiles'])}")
        self.rate = options.rate_per_user or profile["requestsPerUserPerMinute"]
        self.repeat_share = options.repeat_share if options.repeat_share >= 0 else SCENARIO["repeatShare"]
        self.weights = dict(SCENARIO["weights"])
        for part in filter(None, options.weights.split(",")):
            name, _, value = part.partition("=")
            if name.strip() not in ENDPOINTS or not value.strip().replace(".", "", 1).isdigit():
                raise SystemExit(f"--weights: '{part}' is not <endpoint>=<weight>, endpoint one of {ENDPOINTS}")
            self.weights[name.strip()] = float(value)
        limits = profile.get("thresholds", {})
        pick = lambda given, key: given if given >= 0 else limits.get(key)  # noqa: E731
        self.p95_ms = pick(options.p95_ms, "p95Ms")
        self.max_error_rate = pick(options.max_error_rate, "maxErrorRate")
        self.min_cache_hits = pick(options.min_cache_hits, "minCacheHits")
        if options.api_key:
            self.keys, self.user_keys, self.endpoint = [options.api_key], [0], None
        else:
            try:
                data = json.load(open(options.keys_file, encoding="utf-8"))
            except OSError as err:
                raise SystemExit(f"--keys-file {options.keys_file}: {err.strerror}; "
                                 "create keys with `npm run loadtest:keys -- create` or give --api-key")
            self.keys = [k["key"] for k in data["keys"]]
            self.user_keys = data["userKeys"] or [0]
            self.endpoint = data.get("endpoint")
        total = sum(max(0.0, self.weights[e]) for e in ENDPOINTS)
        acc, self.edges = 0.0, []
        for e in ENDPOINTS:
            if self.weights[e] > 0:
                acc += self.weights[e] / total
                self.edges.append((acc, e))


settings = None
samples = None
user_numbers = itertools.count()
unique_numbers = itertools.count()
run_tag = uuid.uuid4().hex[:8]


@events.init.add_listener
def on_init(environment, **_kwargs):
    global settings, samples
    settings = Settings(environment.parsed_options)
    if not environment.host and settings.endpoint:
        environment.host = settings.endpoint
    directory = environment.parsed_options.samples_dir
    if directory and not isinstance(environment.runner, MasterRunner):
        os.makedirs(directory, exist_ok=True)
        samples = open(os.path.join(directory, f"samples-{os.getpid()}.csv"), "w", buffering=1 << 16)
        samples.write("t_epoch_ms,name,category,latency_ms,ok,kind\n")


class SkillserveUser(FastHttpUser):
    """One of the brief's users: Poisson arrivals at its rate, on the key its number maps to."""

    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self):
        runner = self.environment.runner
        workers = max(1, int(os.environ.get("LOADTEST_LOCUST_WORKERS", "1") or 1))
        index = next(user_numbers)
        number = index * workers + runner.worker_index if isinstance(runner, WorkerRunner) else index
        key = settings.keys[settings.user_keys[number % len(settings.user_keys)]]
        self.headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        # Users start at a random point of their first interval, not all at once.
        self.next_at = time.monotonic() + random.expovariate(settings.rate / 60.0)

    def wait_time(self):
        self.next_at += random.expovariate(settings.rate / 60.0)
        return max(0.0, self.next_at - time.monotonic())

    @task
    def one_request(self):
        r = random.random()
        endpoint = next((e for edge, e in settings.edges if r < edge), settings.edges[-1][1])
        method, path, body, repeat = plan(endpoint)
        verdict = self.call(endpoint, method, path, body, repeat)
        if endpoint == "job" and verdict and verdict.get("id") and not verdict.get("done"):
            poll = SCENARIO["jobPoll"]
            for _ in range(poll["maxPolls"]):
                time.sleep(poll["intervalMs"] / 1000.0)
                status = self.call("job-status", "GET", f"/v1/jobs/{verdict['id']}", None, False)
                if status is None or status.get("done"):
                    return
            self.environment.events.request.fire(
                request_type="GET", name="job-status", response_time=0, response_length=0,
                exception=AssertionError(f"job not completed after {poll['maxPolls']} polls"), context={})

    def call(self, name, method, path, body, repeat):
        started = time.perf_counter()
        with self.client.request(method, path, data=body, headers=self.headers, name=name,
                                 catch_response=True) as res:
            latency_ms = (time.perf_counter() - started) * 1000.0
            x_cache = res.headers.get("X-Cache") if res.headers else None
            category, ok, kind, extra = judge(name, repeat, res.status_code or 0, x_cache, res.text)
            if category != "uncached":
                res.request_meta["name"] = f"{name} [{category}]"
            res.request_meta["response_time"] = latency_ms
            if ok:
                res.success()
            else:
                res.failure(kind)
            if samples:
                samples.write(f"{int(time.time() * 1000)},{name},{category},{latency_ms:.3f},{int(ok)},{kind}\n")
            return extra if ok else None


def plan(endpoint):
    """The request for `endpoint`: (method, path, body, repeat), as loadtest/k6/lib/mix.js plans it."""
    repeat = random.random() < settings.repeat_share
    nlp = SCENARIO["nlp"]

    def nlp_body():
        text = (random.choice(nlp["repeats"]) if repeat else
                random.choice(nlp["unique"]).replace("{n}", f"{run_tag}-{os.getpid()}-{next(unique_numbers)}"))
        return {"input": text, "task": random.choice(nlp["tasks"])}

    memory = SCENARIO["memory"]
    if endpoint == "nlp":
        return "POST", "/v1/skills/nlp/infer", json.dumps(nlp_body()), repeat
    if endpoint == "onnx":
        onnx = SCENARIO["onnx"]
        data = random.choice(onnx["repeats"]) if repeat else [round(random.uniform(-4, 4), 6) for _ in range(4)]
        body = {"model": onnx["model"], "inputs": [{"name": onnx["input"], "datatype": "FP32",
                                                    "shape": [1, len(data)], "data": data}]}
        return "POST", "/v1/skills/onnx/infer", json.dumps(body), repeat
    if endpoint == "recall":
        from urllib.parse import quote
        return "GET", f"/v1/memory/triples?subject={quote(random.choice(memory['subjects']))}&limit=10", None, False
    if endpoint == "assert":
        triple = {k: random.choice(memory[k + "s"]) for k in ("subject", "verb", "object")}
        return "POST", "/v1/memory/triples", json.dumps({**triple, "confidence": 0.6, "source": "loadtest"}), False
    return "POST", "/v1/jobs", json.dumps({"skill": "nlp", **nlp_body()}), False


def judge(name, repeat, status, x_cache, text):
    """(category, ok, why it failed, what a job answer says): the checks of mix.js's judge()."""
    cached = name in ("nlp", "onnx")
    category = "uncached" if not cached else "hit" if x_cache in ("HIT", "STALE") else "miss"
    if status == 0:
        return category, False, "no answer", None
    try:
        body = json.loads(text or "")
    except ValueError:
        return category, False, f"{status} body is not JSON", None
    if status < 200 or status >= 400:
        code = body.get("error", {}).get("code", "no error code") if isinstance(body, dict) else "no error code"
        return category, False, f"{status} {code}", None
    if not isinstance(body, dict):
        return category, False, "unexpected body", None
    if cached:
        if x_cache not in ("HIT", "MISS", "STALE"):
            return category, False, f"X-Cache is {x_cache or 'missing'}", None
        if category == "hit" and not repeat:
            return category, False, "a unique input answered from the cache", None
        shaped = isinstance(body.get("output"), dict) if name == "nlp" else bool(body.get("outputs"))
        return (category, True, "", None) if status == 200 and shaped else (category, False, f"{status} unexpected body", None)
    if name == "recall":
        ok = status == 200 and isinstance(body.get("triples"), list)
    elif name == "assert":
        ok = status in (200, 201) and len(body.get("triples") or []) == 1
    elif name == "job":
        ok = status in (200, 202) and isinstance(body.get("id"), str)
        if ok:
            return category, True, "", {"id": body["id"], "done": body.get("status") == "completed"}
    else:  # job-status
        if body.get("status") == "failed":
            return category, False, f"job failed: {(body.get('error') or {}).get('code', 'no code')}", None
        ok = status == 200 and isinstance(body.get("status"), str)
        if ok and body["status"] == "completed" and not isinstance(body.get("output"), dict):
            return category, False, "completed job without output", None
        if ok:
            return category, True, "", {"done": body["status"] == "completed"}
    return (category, True, "", None) if ok else (category, False, "unexpected body", None)


@events.quitting.add_listener
def check_thresholds(environment, **_kwargs):
    """Exit 1 when a threshold fails; on a master, over what every worker reported."""
    if isinstance(environment.runner, WorkerRunner):
        return
    if samples:
        samples.flush()
    total = environment.stats.total
    hits = sum(e.num_requests - e.num_failures for e in environment.stats.entries.values() if e.name.endswith("[hit]"))
    failed = []
    if total.num_requests == 0:
        failed.append("no request completed")
    if settings.p95_ms is not None and total.num_requests and not total.get_response_time_percentile(0.95) < settings.p95_ms:
        failed.append(f"p95 {total.get_response_time_percentile(0.95)} ms is not below {settings.p95_ms} ms")
    if settings.max_error_rate is not None and total.fail_ratio > settings.max_error_rate:
        failed.append(f"{total.num_failures} of {total.num_requests} requests failed "
                      f"(allowed {settings.max_error_rate * 100:g} %)")
    if settings.min_cache_hits is not None and hits < settings.min_cache_hits:
        failed.append(f"{hits} answers came from the cache (at least {settings.min_cache_hits} expected)")
    for reason in failed:
        log.error("threshold failed: %s", reason)
    environment.process_exit_code = 1 if failed else 0


@events.quit.add_listener
def close_samples(**_kwargs):
    if samples:
        samples.close()
