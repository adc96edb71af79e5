// ESLint flat config for `make lint`: correctness rules only, no formatting or style rules.
// TypeScript (lib/, spec/, bench/, manifests/image/) gets typescript-eslint's type-checked
// recommended set, minus the rules that only track `any` or are taste, plus `return-await`
// in try/catch. The few plain .mjs/.cjs scripts (spec stand-ins, mocha reporter) get ESLint's
// recommended set. Unused files, exports and dependencies are knip's job (knip.jsonc).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// `_` marks a deliberately unused parameter, binding or destructured-away property.
const unusedVars = {
  argsIgnorePattern: '^_',
  varsIgnorePattern: '^_',
  caughtErrorsIgnorePattern: '^_',
  destructuredArrayIgnorePattern: '^_',
  ignoreRestSiblings: true,
};

export default defineConfig(
  globalIgnores([
    'dist/',
    'coverage/',
    'reports/',
    '.stryker-tmp/',
    '.cluster/',
    '.demo/',
    '.images/',
    'bench/results/',
    'bench/peer/',
    'spec/cluster/plane/',
  ]),
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: { 'no-unused-vars': ['error', unusedVars] },
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Bugs: a promise nobody awaits or whose rejection nobody handles, an await on a value
      // that is not a promise, a promise where a callback's void return is expected.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Promise.all over `close?.()` results (a promise or undefined) is fine.
      '@typescript-eslint/await-thenable': ['error', { allowMixedPromiseArrays: true }],
      // `return promise` inside try/catch skips the catch and the finally's timing: await it.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // Re-rejecting a caught `unknown` is fine; rejecting with a string or plain object is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/no-unused-vars': ['error', unusedVars],
      // Off: they track `any` flowing from JSON and client-node's loose types (hundreds of
      // findings, no bug among them); tsc's strict mode is the type gate.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Off: taste, not correctness (async functions that implement a promise-returning
      // contract without awaiting; casts that tsc already accepts).
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Off: `String(x)` and `${x}` on caught errors and URLSearchParams are deliberate here;
      // every finding was a false positive (an `unknown` narrowed to `{}`).
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
  {
    files: ['spec/**/*.ts'],
    rules: {
      // chai's property assertions (`.to.be.true`, `.that.is.not.empty`) are expressions.
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
  {
    files: ['spec/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Specs and benchmarks read untyped JSON bodies from the simulator and the API server.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
