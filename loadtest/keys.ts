/**
 * `npm run loadtest:keys -- create | remove | clean`: the tenants and keys a load test runs with,
 * for running Locust or k6 by hand (npm run loadtest does this itself).
 *
 *   create [--profile brief] [--users N] [--rate R] [--file F]   tenants and keys of mixed tiers for N users → F
 *   remove [--file F]                                             the run's tenants, keys, facts and cached answers
 *   clean                                                         tenants left by runs that were killed before removing theirs
 *
 * F defaults to $RUN_DIR/loadtest/keys.json (mode 600: it holds live keys). The cluster's
 * database and key prefix come from the same environment as `npm run up`'s.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.js';
import { createKeys, defaultKeysPath, planFor, readKeysFile, removeKeys, removeLeftovers } from './lib/keys.js';
import { loadScenario, profileOf } from './lib/scenario.js';

const print = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const [action, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      profile: { type: 'string', default: 'brief' },
      users: { type: 'string' },
      rate: { type: 'string' },
      file: { type: 'string' },
      endpoint: { type: 'string' },
    },
  });
  const config = loadConfig();
  const file = values.file ?? process.env.LOADTEST_KEYS ?? defaultKeysPath(config);
  switch (action) {
    case 'create': {
      const scenario = loadScenario();
      const profile = profileOf(scenario, values.profile!, {
        users: values.users === undefined ? undefined : Number(values.users),
        requestsPerUserPerMinute: values.rate === undefined ? undefined : Number(values.rate),
      });
      if (!(profile.users >= 1) || !(profile.requestsPerUserPerMinute > 0)) {
        throw new Error('--users must be a whole number ≥ 1 and --rate a number > 0');
      }
      const plan = planFor(scenario, config, Math.floor(profile.users), profile.requestsPerUserPerMinute);
      for (const w of plan.warnings) print(`warning: ${w}`);
      const endpoint = values.endpoint ?? process.env.LOADTEST_HOST ?? `http://${config.HOST}:${config.PUBLIC_PORT}`;
      const keys = await createKeys(config, plan, endpoint, file);
      print(
        `created ${keys.keys.length} keys in ${new Set(keys.keys.map((k) => k.tenant)).size} tenants for ` +
          `${profile.users} users at ${profile.requestsPerUserPerMinute}/min (run ${keys.runId}) → ${file}`,
      );
      return;
    }
    case 'remove': {
      const n = await removeKeys(config, readKeysFile(file), file);
      print(`removed ${n} tenants with their keys, facts and cached answers; deleted ${file}`);
      return;
    }
    case 'clean': {
      const n = await removeLeftovers(config);
      print(`removed ${n} tenants left by earlier load tests`);
      return;
    }
    default:
      print(
        'usage: npm run loadtest:keys -- create [--profile P] [--users N] [--rate R] [--file F] | remove [--file F] | clean',
      );
      process.exitCode = 2;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`loadtest:keys: ${(err as Error).message}\n`);
  process.exit(1);
});
