// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layout rule: which folder of src/ may import which (CONTRIBUTING.md explains it). Lower
 * layers never reach up, so a helper in lib/ cannot pull the gateway into a skill process, and
 * each role's main.ts is the only place the layers meet. cli.ts, at the top, may import anything.
 */
const folders = [
  'errors',
  'config',
  'lib',
  'observability',
  'db',
  'memory',
  'auth',
  'cache',
  'skills',
  'queue',
  'gateway',
  'cluster',
];
const foundations = ['errors', 'config', 'lib', 'observability'];
/** @type {Record<string, string[]>} folder → the src/ folders it may import */
const mayImport = {
  errors: [],
  config: [],
  // lib/ takes a Logger as a parameter: the type only (allowTypeImports below), never the module.
  lib: ['errors', 'config'],
  observability: ['errors', 'config', 'lib'],
  db: ['errors', 'config', 'lib'],
  memory: [...foundations, 'db'],
  auth: [...foundations, 'db'],
  cache: [...foundations, 'auth'],
  skills: [...foundations],
  queue: [...foundations, 'auth', 'skills'],
  // gateway/ is a role: it wires every layer below it, but never the supervisor.
  gateway: folders.filter((f) => f !== 'gateway' && f !== 'cluster'),
  // cluster/ orchestrates roles as processes: it reads the registry and probes them, and never
  // runs a role's code in the supervisor.
  cluster: [...foundations, 'db', 'auth', 'skills'],
};

/** @param {string} folder @param {string[]} [alsoAllowed] */
function layering(folder, alsoAllowed = []) {
  const allowed = new Set([folder, ...mayImport[folder], ...alsoAllowed]);
  const patterns = folders
    .filter((f) => !allowed.has(f))
    .map((f) => ({
      // Specifiers are relative ('../../queue/job.js'); no folder below src/ shares a top-level name.
      regex: `^(\\.\\./)+${f}/`,
      message: `src/${folder}/ may not import src/${f}/ (the layout rule: CONTRIBUTING.md, eslint.config.js).`,
      allowTypeImports: folder === 'lib' && f === 'observability',
    }));
  return { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.run/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      // Library code logs through pino; only the CLI prints.
      'no-console': 'error',
    },
  },
  ...folders.map((folder) => ({ files: [`src/${folder}/**/*.ts`], rules: layering(folder) })),
  {
    // k6 scripts run in k6's own runtime, with its globals.
    files: ['loadtest/k6/**/*.js'],
    languageOptions: { globals: { __ENV: 'readonly', __VU: 'readonly', __ITER: 'readonly', open: 'readonly' } },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'eval/**/*.ts', 'chaos/**/*.ts', 'loadtest/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
