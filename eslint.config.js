// Lint rules, including the layer rules of ARCHITECTURE.md: the core stays pure, each folder
// imports only what its row of the table allows, and no import cycle is allowed.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// The storage port, as the layers above it and the adapters see it: `port.ts` and the files of
// src/storage it re-exports (key checks, error marking), read from port.ts itself.
const STORAGE_PORT = ['src/storage/port.ts', ...[
  ...readFileSync(new URL('./src/storage/port.ts', import.meta.url), 'utf8')
    .matchAll(/^export\s[^;]*?\sfrom\s+'\.\/([^']+)'/gm),
].map((m) => `src/storage/${m[1]}`)];
const CATALOG_PORTS = ['src/catalog/port.ts', 'src/catalog/access-port.ts'];

// The table "Layers and the dependency rule" of ARCHITECTURE.md is the source; this array says the
// same, row for row. `allowed` lists what a file under `folder` may import besides its own folder:
// folders or files of the repository, `node:*` (node's own modules) and `npm` (any package).
// Imports are resolved to files before they are compared, so every spelling of a path is caught
// (`../catalog/sqlite.ts`, `../../src/catalog/sqlite.ts`, the package's own `lifeboat/…` exports).
// Unit tests beside the source (`*.test.ts`) follow their folder's row, plus node and packages.
const LAYERS = [
  { folder: 'src/core', allowed: [],
    message: 'src/core is pure: it imports only src/core, no node module or package.' },
  { folder: 'src/wire', allowed: ['src/core'],
    message: 'src/wire (the REST shapes) imports only src/core, no node module or package.' },
  { folder: 'src/fs', allowed: ['src/core', 'node:*'],
    message: 'src/fs (the shared file helpers) imports only node and src/core.' },
  { folder: 'src/state', allowed: ['src/core', 'src/fs', 'node:*', 'npm'],
    message: 'src/state (the state library) imports only src/core and src/fs.' },
  { folder: 'src/format', allowed: ['src/core', 'src/fs', 'node:*', 'npm'],
    message: 'src/format imports only src/core and src/fs (the shared file helpers).' },
  { folder: 'src/storage', allowed: ['src/core', 'src/fs', 'node:*', 'npm'],
    message: 'src/storage imports only src/core and src/fs.' },
  { folder: ['src/storage/fileshare.ts', 'src/storage/azure-blob.ts', 'src/storage/s3.ts'],
    within: 'src/storage', allowed: [...STORAGE_PORT, 'node:*', 'npm'],
    message: `A storage adapter imports only the storage port (${STORAGE_PORT.join(', ')}) of src/storage, never another adapter.` },
  { folder: 'src/repository', allowed: ['src/core', 'src/wire', 'src/format', 'src/fs', ...STORAGE_PORT, 'node:*', 'npm'],
    message: 'src/repository imports only src/core, src/wire, src/format, src/fs and the storage port (src/storage/port.ts), not the adapters or open.ts.' },
  { folder: 'src/catalog', allowed: ['src/core', 'node:*', 'npm'],
    message: 'src/catalog imports only src/core.' },
  { folder: 'src/service', allowed: ['src/core', 'src/wire', 'src/format', 'src/repository', ...CATALOG_PORTS, ...STORAGE_PORT, 'node:*', 'npm'],
    message: 'src/service imports src/core, src/wire, src/format, src/repository and the ports (src/catalog/port.ts, src/catalog/access-port.ts, src/storage/port.ts); adapters are picked in src/main, and src/api, src/host, src/client and src/main are above it.' },
  { folder: 'src/host', allowed: ['src/core', 'src/wire', 'src/state', 'src/format', 'src/fs', 'src/repository', ...STORAGE_PORT, 'src/client', 'node:*', 'npm'],
    message: 'src/host imports src/core, src/wire, src/state, src/format, src/fs, src/repository, the storage port and src/client; never src/service, src/catalog, src/api or src/main.' },
  { folder: 'src/client', allowed: ['src/core', 'src/wire', 'node:*', 'npm'],
    message: 'src/client imports only src/core and src/wire.' },
  { folder: 'src/cli', allowed: ['src/core', 'src/wire', 'src/client', 'node:*', 'npm'],
    message: 'src/cli (the operator commands) talks to the service only through src/client, with src/core and src/wire for its shapes.' },
  { folder: 'src/explorer', allowed: ['src/core', 'src/wire', 'src/client', 'npm'],
    message: 'src/explorer (the web explorer, run in the browser) calls the service only through src/client, with src/core and src/wire for its shapes.' },
  { folder: 'src/api', allowed: ['src/service', 'src/core', 'src/wire', 'node:*', 'npm'],
    message: 'src/api imports only src/service, src/core and src/wire: no catalog, storage, format, host or state (the service re-exports what the routes need).' },
  { folder: 'src/main', allowed: ['src', 'node:*', 'npm'], message: 'src/main may import every layer of src/, but not test/ or bench/.' },
  { folder: 'bench', allowed: ['src', 'scripts', 'node:*', 'npm'],
    message: 'bench imports anything but test/: what it shares with the tests belongs in src/ or bench/.' },
];

// Each row becomes zones of import-x/no-restricted-paths: from each top folder of ours that the
// row does not allow whole, everything is refused but the row's own folder and what it allows.
const OURS = ['src', 'test', 'bench', 'scripts'];
const relativeTo = (from, path) => `./${path.slice(from.length + 1)}`;
const layerZones = LAYERS.flatMap(({ folder, within, allowed, message }) => {
  const targets = [folder].flat();
  const ours = allowed.filter((p) => p !== 'node:*' && p !== 'npm');
  if (within) return [{ target: targets, from: within, except: ours.map((p) => relativeTo(within, p)), message }];
  const open = [...targets, ...ours];
  return OURS.filter((top) => !open.includes(top)).map((top) => ({
    target: targets,
    from: top,
    except: open.filter((p) => p.startsWith(`${top}/`)).map((p) => relativeTo(top, p)),
    message,
  }));
});

// Layers that may not import node's modules or packages: no-restricted-imports on the specifier
// (node's modules resolve to no file, so the zones above do not see them).
const builtins = builtinModules.filter((m) => !m.startsWith('_')).join('|');
const outsideRules = LAYERS.filter(({ allowed }) => !allowed.includes('npm')).map(({ folder, allowed, message }) => ({
  files: [`${folder}/**/*.{ts,mts,js,mjs}`],
  ignores: ['src/**/*.test.ts'],
  rules: {
    'no-restricted-imports': ['error', { patterns: [
      { regex: allowed.includes('node:*') ? `^(?!\\.|node:|(${builtins})(/|$))` : '^(?!\\.)', message },
    ] }],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.lifeboat/**', 'bench/.work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test collects these itself.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['it', 'describe', 'test', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The layer rule and the cycle check, on every file of ours.
    files: ['**/*.{ts,mts,js,mjs}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.mts', '.mjs', '.js', '.json', '.node'] })],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.mts'] },
      'import-x/extensions': ['.ts', '.mts', '.js', '.mjs'],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: layerZones }],
      // Type-only imports are not followed: they vanish at run time.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  ...outsideRules,
  {
    // The formatter: one house style, fixed by `npm run format` (eslint --fix), checked by lint.
    // Stylistic rules rather than prettier: prettier re-breaks the dense one-line tables and
    // calls this code is written in (at a 160 width it grows src/ by 14%, sqlite.ts by half).
    files: ['**/*.{ts,mts,js,mjs}'],
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/max-len': ['error', { code: 200, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
      '@stylistic/indent': ['error', 2, { SwitchCase: 1, flatTernaryExpressions: true, offsetTernaryExpressions: true }],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true }],
      '@stylistic/semi': ['error', 'always'],
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      '@stylistic/eol-last': 'error',
      '@stylistic/no-trailing-spaces': 'error',
      '@stylistic/no-multiple-empty-lines': ['error', { max: 1, maxEOF: 0 }],
      '@stylistic/no-tabs': 'error',
      '@stylistic/object-curly-spacing': ['error', 'always'],
      '@stylistic/array-bracket-spacing': ['error', 'never'],
      '@stylistic/comma-spacing': 'error',
      '@stylistic/key-spacing': 'error',
      '@stylistic/keyword-spacing': 'error',
      '@stylistic/space-before-blocks': 'error',
      '@stylistic/space-infix-ops': 'error',
      '@stylistic/arrow-spacing': 'error',
      '@stylistic/semi-spacing': 'error',
      '@stylistic/member-delimiter-style': 'error',
      '@stylistic/type-annotation-spacing': 'error',
    },
  },
  {
    // The core decides; it does no I/O, reads no clock and no environment.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: {
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'src/core takes `now` as an argument.' },
        { object: 'process', property: 'env', message: 'src/core reads no environment.' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'src/core takes `now` as an argument.' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
