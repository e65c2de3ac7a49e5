import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './k8s-manifests.js';
import { MODELS_DIR, ensureModels } from './models.js';

/** One Dockerfile instruction, continuation lines joined, comments dropped. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages, in order; ARGs before the first FROM are resolved into the bases. */
export function dockerfileStages(text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')): Stage[] {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && !pending)) return;
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    pending = pending ? { text: `${pending.text} ${part}`, line: pending.line } : { text: part, line: i + 1 };
    if (continued) return;
    const m = /^(\S+)\s*(.*)$/.exec(pending.text.trim())!;
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: pending.line });
    pending = undefined;
  });
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      const base = m[1]!.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs[name] ?? '');
      stages.push({ name: m[2], base, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [name, value] = ins.args.split('=');
        globalArgs[name!] = value ?? '';
      }
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

/** The ENV a stage sets (`ENV A=1 B=2` form). */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

/** COPY instructions as { from (stage or undefined for the build context), sources, destination }. */
export function copies(stage: Stage): { from?: string; sources: string[]; dest: string; line: number }[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)!, line: i.line };
    });
}

/**
 * Whether `.dockerignore` keeps `path` (relative to the context) out of the build context.
 * Patterns as Docker reads them: later patterns win, `!` re-includes, `*` and `?` stay within a
 * path segment, `**` spans segments, and a pattern that matches a directory covers what is in it.
 */
export function dockerIgnores(path: string, ignoreText = readFileSync(join(ROOT, '.dockerignore'), 'utf8')): boolean {
  const patterns = ignoreText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const toRegExp = (p: string) =>
    new RegExp(
      `^${p
        .replace(/\/$/, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\/?/g, '\u{1}')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replaceAll('\u{1}', '(?:.*/)?')}(?:/.*)?$`,
    );
  let ignored = false;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    if (toRegExp(negate ? p.slice(1) : p).test(path)) ignored = !negate;
  }
  return ignored;
}

/**
 * The runtime stage's file layout, rebuilt here without a container engine: each COPY of the
 * last stage reproduced from what its source stage makes (`npm run build` → dist, the model
 * generator → models, `npm ci --omit=dev` → node_modules, which here is the repository's, dev
 * dependencies included). Running `node <dir>/dist/cli.js` in it shows the image has the files
 * its code reads at run time. Unknown sources fail, so a new COPY cannot go unchecked.
 */
export function assembleRuntimeLayout(): {
  dir: string;
  cli: string;
  env: Record<string, string>;
  /** An environment with the image's paths (/app/…) pointing into this copy. */
  localEnv(env: Record<string, string>): Record<string, string>;
  cleanup(): void;
} {
  const stages = dockerfileStages();
  const runtime = stages.at(-1)!;
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-image-'));
  const app = join(dir, 'app');
  const workdir = runtime.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '/';
  const local = (dest: string) => join(dir, dest.startsWith('/') ? dest : join(workdir, dest));
  try {
    mkdirSync(app, { recursive: true });
    for (const c of copies(runtime)) {
      for (const source of c.sources) {
        const target = local(c.dest.endsWith('/') || c.sources.length > 1 ? join(c.dest, source) : c.dest);
        mkdirSync(join(target, '..'), { recursive: true });
        if (!c.from) {
          cpSync(join(ROOT, source), target, { recursive: true });
        } else if (c.from === 'prod-deps' && source === '/app/node_modules') {
          symlinkSync(join(ROOT, 'node_modules'), target);
        } else if (c.from === 'build' && source === '/app/dist') {
          execFileSync(
            process.execPath,
            [
              join(ROOT, 'node_modules/typescript/bin/tsc'),
              '-p',
              join(ROOT, 'tsconfig.build.json'),
              '--outDir',
              target,
            ],
            { stdio: 'pipe' },
          );
        } else if (c.from === 'build' && source.startsWith('/app/models/')) {
          ensureModels();
          cpSync(join(MODELS_DIR, source.slice('/app/models/'.length)), target, { recursive: true });
        } else {
          throw new Error(`Dockerfile line ${c.line}: COPY --from=${c.from} ${source} is not reproduced by this test`);
        }
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const localEnv = (env: Record<string, string>) =>
    Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.startsWith('/app/') ? join(dir, v) : v]));
  return {
    dir: app,
    cli: join(app, 'dist', 'cli.js'),
    env: localEnv(stageEnv(runtime)),
    localEnv,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
