import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { METRICS, REQUEST_BUCKETS } from '../../src/observability/catalogue.js';
import { SCRAPE_JOBS } from '../../src/observability/scrape-jobs.js';
import { DASHBOARDS } from '../../scripts/ops/dashboards/index.js';
import { PROMETHEUS_UID } from '../../scripts/ops/dashboards/common.js';
import { check, root } from '../../scripts/ops/generate.js';
import { OBJECTIVES, SLO } from '../../scripts/ops/objectives.js';
import { alertNames, alertRules, runbookPath } from '../../scripts/ops/rules.js';

const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('ops assets', () => {
  it('the committed rules, dashboards and docs/METRICS.md are what scripts/ops generates, from catalogued metrics', async () => {
    assert.deepEqual(await check(), []);
  });

  it('promtool accepts the config and the rules, and the rule unit tests pass', () => {
    assert.match(run('promtool', ['check', 'config', 'prometheus/prometheus.yml']), /SUCCESS/);
    assert.match(
      run('promtool', [
        'check',
        'rules',
        ...readdirSync(join(root, 'prometheus/rules')).map((f) => `prometheus/rules/${f}`),
      ]),
      /SUCCESS/,
    );
    const tests = readdirSync(join(root, 'prometheus')).filter((f) => f.endsWith('.test.yml'));
    assert.ok(tests.length >= 3);
    const out = run('promtool', ['test', 'rules', ...tests.map((f) => `prometheus/${f}`)]);
    assert.equal(out.match(/SUCCESS/g)?.length, tests.length, out);
  });

  it('every alert is unit-tested', () => {
    const tested = readdirSync(join(root, 'prometheus'))
      .filter((f) => f.endsWith('.test.yml'))
      .map((f) => readFileSync(join(root, 'prometheus', f), 'utf8'))
      .join('\n');
    for (const alert of alertNames())
      assert.match(tested, new RegExp(`alertname: ${alert}\\b`), `${alert} has no promtool test`);
  });

  it('Alertmanager accepts its config and routes by severity', () => {
    assert.match(run('amtool', ['check-config', 'prometheus/alertmanager.yml']), /SUCCESS/);
    const route = (...labels: string[]) =>
      run('amtool', ['config', 'routes', 'test', '--config.file=prometheus/alertmanager.yml', ...labels]).trim();
    assert.equal(route('alertname=HighErrorRate', 'severity=critical'), 'page');
    assert.equal(route('alertname=HighRequestLatency', 'severity=warning'), 'ticket');
    assert.equal(route('alertname=Watchdog', 'severity=none'), 'watchdog');
  });

  it('every alert has severity, summary, description and a runbook that exists, with every section', () => {
    for (const rule of alertRules()) {
      assert.ok(['critical', 'warning', 'none'].includes(rule.severity), rule.alert);
      assert.ok(rule.summary && rule.description, rule.alert);
      const path = join(root, runbookPath(rule.alert));
      assert.ok(existsSync(path), `${path} is missing`);
      const text = readFileSync(path, 'utf8');
      assert.ok(text.startsWith(`# ${rule.alert}\n`), path);
      for (const section of ['Meaning', 'Impact', 'Confirm', 'Mitigation', 'Fixed when'])
        assert.match(text, new RegExp(`^## ${section}$`, 'm'), `${path} lacks ## ${section}`);
    }
    const runbooks = readdirSync(join(root, 'docs/runbooks')).map((f) => f.replace(/\.md$/, ''));
    assert.deepEqual(runbooks.sort(), alertNames().sort(), 'one runbook per alert, no orphans');
  });

  it('the latency objectives are bucket boundaries of the request histogram', () => {
    const buckets: readonly number[] = REQUEST_BUCKETS;
    for (const s of [SLO.latencyS, OBJECTIVES.latencyAlertS, OBJECTIVES.latencyTargetS])
      assert.ok(buckets.includes(s), `${s}`);
    assert.ok(buckets.at(-1)! >= 600, 'the buckets cover the longest deadline a client may ask for');
    assert.equal(METRICS.httpRequestDuration.buckets, REQUEST_BUCKETS);
  });

  it("Prometheus's jobs are the ones the supervisor writes targets for", () => {
    const config = parse(readFileSync(join(root, 'prometheus/prometheus.yml'), 'utf8'));
    const jobs = config.scrape_configs.map((c: { job_name: string }) => c.job_name).sort();
    assert.deepEqual(jobs, Object.values(SCRAPE_JOBS).sort());
    for (const c of config.scrape_configs) assert.deepEqual(c.file_sd_configs[0].files, [`targets/${c.job_name}.json`]);
  });

  it('Grafana: provisioned data sources are the ones the dashboards use; every panel has a query; uids are unique', () => {
    const ds = parse(readFileSync(join(root, 'grafana/provisioning/datasources/skillserve.yml'), 'utf8'));
    const uids = ds.datasources.map((d: { uid: string }) => d.uid);
    assert.ok(uids.includes(PROMETHEUS_UID));
    const prom = ds.datasources.find((d: { uid: string }) => d.uid === PROMETHEUS_UID);
    assert.equal(
      prom.jsonData.alertmanagerUid,
      ds.datasources.find((d: { type: string }) => d.type === 'alertmanager').uid,
    );
    const provider = parse(readFileSync(join(root, 'grafana/provisioning/dashboards/skillserve.yml'), 'utf8'));
    assert.equal(provider.providers[0].type, 'file');
    const seen = new Set<string>();
    for (const [file, build] of Object.entries(DASHBOARDS)) {
      const d = build();
      assert.ok(!seen.has(d.uid), d.uid);
      seen.add(d.uid);
      const committed = JSON.parse(readFileSync(join(root, 'grafana/dashboards', file), 'utf8'));
      assert.equal(committed.uid, d.uid);
      const ds = committed.templating.list.find((v: { type: string }) => v.type === 'datasource');
      assert.equal(ds.current.value, PROMETHEUS_UID);
      for (const p of d.panels ?? []) {
        if (p.type === 'row') continue;
        assert.equal(p.datasource?.uid, '${datasource}', `${d.uid}: ${p.title}`);
        assert.ok((p.targets ?? []).length > 0 && p.targets!.every((t) => t.expr), `${d.uid}: ${p.title} has no query`);
      }
    }
  });
});
