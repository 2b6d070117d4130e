// Lint rules, including the layer rules of ARCHITECTURE.md: the core stays pure.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // The core decides; it does no I/O, reads no clock and no environment.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['node:*', 'fs', 'path', 'os', 'child_process'], message: 'src/core is pure: no I/O modules.' },
        { group: ['../*', '!../core/*'], message: 'src/core imports only src/core.' },
      ] }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'src/core takes `now` as an argument.' },
        { object: 'process', property: 'env', message: 'src/core reads no environment.' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'src/core takes `now` as an argument.' }],
    },
  },
  {
    // The state library knows nothing of the service, storage or API.
    files: ['src/state/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['../service/*', '../api/*', '../storage/*', '../catalog/*', '../host/*', '../format/*'], message: 'src/state depends only on src/core and src/fs.' },
      ] }],
    },
  },
  {
    // File helpers shared by the state library and the storage adapters: node only.
    files: ['src/fs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*', '!../fs/*'], message: 'src/fs imports only node.' }] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
