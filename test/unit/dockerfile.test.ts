import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validate } from 'dockerfile-utils';
import { copies, dockerfileStages, dockerIgnores, stageEnv } from '../helpers/image-layout.js';
import { ROOT } from '../helpers/k8s-manifests.js';

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = dockerfileStages(text);
const runtime = stages.at(-1)!;
const only = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword);

describe('Dockerfile', () => {
  it('has no error a Dockerfile linter finds (dockerfile-utils)', () => {
    const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    assert.deepEqual(problems, []);
    assert.ok(validate('FROM x\nRUNN y\n').length > 0, 'the linter does report errors');
  });

  it('builds in stages on Node 20 slim; the runtime stage gets production dependencies only', () => {
    assert.ok(stages.length >= 3);
    for (const s of stages) assert.equal(s.base, 'node:20-bookworm-slim');
    const fromStages = copies(runtime).flatMap((c) => (c.from ? [`${c.from} ${c.sources.join(' ')}`] : []));
    assert.ok(fromStages.includes('prod-deps /app/node_modules'), fromStages.join('; '));
    assert.ok(!fromStages.some((c) => c.startsWith('build /app/node_modules')), 'dev dependencies in the image');
    const prodDeps = stages.find((s) => s.name === 'prod-deps')!;
    assert.ok(prodDeps.instructions.some((i) => i.keyword === 'RUN' && /npm ci --omit=dev/.test(i.args)));
    // Nothing is installed or compiled in the final stage, and npm itself is removed.
    for (const run of only('RUN')) {
      assert.ok(!/apt-get|apk |npm (ci|install)|gcc|make /.test(run.args), `line ${run.line}: ${run.args}`);
    }
    assert.ok(only('RUN').some((r) => /rm -rf .*\/usr\/local\/lib\/node_modules/.test(r.args)));
  });

  it('runs as a numeric non-root user, with the skillserve CLI as entry point and a health check', () => {
    const [user] = only('USER').map((u) => u.args);
    assert.match(user!, /^[1-9]\d*:[1-9]\d*$/, 'numeric, so Kubernetes can verify runAsNonRoot');
    assert.deepEqual(JSON.parse(only('ENTRYPOINT')[0]!.args), ['node', '/app/dist/cli.js']);
    const healthcheck = only('HEALTHCHECK')[0]!.args;
    assert.match(healthcheck, /CMD \["node", "\/app\/dist\/cli\.js", "probe"\]/);
    const env = stageEnv(runtime);
    assert.equal(env.HOST, '0.0.0.0');
    for (const port of ['GATEWAY_PORT', 'SKILL_PORT', 'METRICS_PORT']) assert.ok(Number(env[port]) > 0, port);
    const exposed = only('EXPOSE')
      .flatMap((e) => e.args.split(/\s+/))
      .map(Number);
    assert.deepEqual(exposed.sort(), [env.GATEWAY_PORT, env.SKILL_PORT, env.METRICS_PORT].map(Number).sort());
  });

  it('copies from the build context only what exists and .dockerignore lets in', () => {
    for (const stage of stages) {
      for (const c of copies(stage).filter((x) => !x.from)) {
        for (const source of c.sources) {
          assert.ok(existsSync(join(ROOT, source)), `line ${c.line}: ${source} does not exist`);
          assert.ok(!dockerIgnores(source), `line ${c.line}: ${source} is excluded by .dockerignore`);
        }
      }
    }
  });

  it('keeps secrets, local state and build output out of the build context', () => {
    for (const path of [
      '.git/config',
      '.run/dev-key',
      'node_modules/x/index.js',
      'dist/cli.js',
      'models/mlp/1/model.onnx',
      '.env',
      'test/unit/x.test.ts',
      'src/x.test.ts',
    ]) {
      assert.ok(dockerIgnores(path), `${path} is in the build context`);
    }
    for (const path of ['src/cli.ts', 'package.json', 'proto/skill.proto', 'nginx/nginx.conf.template']) {
      assert.ok(!dockerIgnores(path), `${path} is left out`);
    }
  });
});
