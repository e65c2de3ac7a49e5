import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { errorCatalogue } from '../../src/errors/index.js';

/**
 * Fastify's habit: the catalogue, the code and the documents cannot drift apart. A code nobody
 * answers with is a promise to clients that nothing keeps; an undocumented one surprises them.
 */
const root = new URL('../../', import.meta.url).pathname;
const codes = Object.keys(errorCatalogue);

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Every `'CODE'` string literal in src/, outside the catalogue itself (src/errors/). */
function codesUsedInSource(): Set<string> {
  const used = new Set<string>();
  for (const file of sources('src')) {
    if (file.includes('/src/errors/')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/['"`]([A-Z][A-Z_]+)['"`]/g)) used.add(m[1]!);
  }
  return used;
}

/** `return <status> '{"error":{"code":"CODE",…'` lines of the nginx template. */
function nginxAnswers(): { status: number; code: string }[] {
  const template = readFileSync(join(root, 'nginx/nginx.conf.template'), 'utf8');
  return [...template.matchAll(/return (\d{3}) '\{"error":\{"code":"([A-Z_]+)"/g)].map((m) => ({
    status: Number(m[1]),
    code: m[2]!,
  }));
}

/** Rows of the README's errors table: | `CODE` | status | when |. */
function readmeTable(): Map<string, number> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const m of readme.matchAll(/^\| `([A-Z][A-Z_]+)` +\| (\d{3}) +\|/gm)) rows.set(m[1]!, Number(m[2]));
  return rows;
}

describe('error catalogue against the code and the documents', () => {
  it('every code is answered somewhere: in src/ or by nginx', () => {
    const used = codesUsedInSource();
    for (const { code } of nginxAnswers()) used.add(code);
    const unused = codes.filter((c) => !used.has(c));
    assert.deepEqual(unused, [], `codes nothing answers with (use them or remove them): ${unused.join(', ')}`);
  });

  it("nginx's own error bodies use catalogue codes with the catalogue's status", () => {
    const answers = nginxAnswers();
    assert.ok(answers.length >= 4, 'the template still writes its error bodies');
    for (const { status, code } of answers) {
      assert.ok(Object.hasOwn(errorCatalogue, code), `nginx answers ${code}, which the catalogue lacks`);
      assert.equal(status, errorCatalogue[code as keyof typeof errorCatalogue].status, code);
    }
  });

  it("the README's errors table lists every code, and only those, with its status", () => {
    const table = readmeTable();
    assert.deepEqual([...table.keys()].sort(), [...codes].sort());
    for (const [code, status] of table) {
      assert.equal(status, errorCatalogue[code as keyof typeof errorCatalogue].status, code);
    }
  });
});
