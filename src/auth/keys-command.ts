import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { migrate } from '../db/migrate.js';
import { createPgPool } from '../lib/postgres.js';
import { UsageError } from '../lib/usage-error.js';
import { KeyStore, type Tier, tiers } from './key-store.js';

const usage = `Usage:
  skillserve keys create --tenant <name> [--tier free|standard|premium] [--name <label>]
  skillserve keys list [--tenant <name>]
  skillserve keys revoke <key id or prefix>`;

/** `skillserve keys …`: create (the key is printed once), list, revoke. */
export async function keysCommand(config: Config, argv: string[], print: (line: string) => void): Promise<void> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, tier: { type: 'string', default: 'standard' }, name: { type: 'string' } },
  });
  const pool = createPgPool(config.DATABASE_URL, { name: 'skillserve-keys', schema: config.DATABASE_SCHEMA, max: 1 });
  try {
    await migrate(pool, config.DATABASE_SCHEMA);
    const store = new KeyStore(pool);
    switch (action) {
      case 'create': {
        const tenant = values.tenant;
        if (!tenant || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(tenant)) {
          throw new UsageError(`--tenant needs a lower-case name (letters, digits, "-", "_")\n${usage}`);
        }
        if (!(tiers as readonly string[]).includes(values.tier)) {
          throw new UsageError(`--tier must be one of ${tiers.join(', ')}\n${usage}`);
        }
        const created = await store.create({ tenant, tier: values.tier as Tier, name: values.name });
        print(
          `key ${created.id} for tenant ${tenant} (${created.tier})\n\n  ${created.key}\n\nIt is shown this once; only its hash is stored.`,
        );
        return;
      }
      case 'list': {
        const keys = await store.list(values.tenant);
        print(
          [
            'id                                    tenant           tier      prefix        created                   status',
            ...keys.map(
              (k) =>
                `${k.id}  ${k.tenant.padEnd(16)} ${k.tier.padEnd(9)} ${k.prefix.padEnd(13)} ${k.createdAt.toISOString()}  ${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}`,
            ),
          ].join('\n'),
        );
        return;
      }
      case 'revoke': {
        const target = positionals[0];
        if (!target) throw new UsageError(`revoke needs a key id or prefix\n${usage}`);
        const n = await store.revoke(target);
        if (n === 0) throw new UsageError(`no active key matches "${target}"`);
        print(`revoked ${n} key${n === 1 ? '' : 's'}; gateways stop accepting it within ${config.KEY_CACHE_TTL_MS} ms`);
        return;
      }
      default:
        throw new UsageError(usage);
    }
  } finally {
    await pool.end();
  }
}
