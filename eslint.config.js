// ESLint 9 flat config: typescript-eslint's type-checked rules on the
// TypeScript of src/, test/, bench/ and examples/ (all in tsconfig.json), plain
// recommended rules on the config files, and eslint-config-prettier last so
// no rule argues with Prettier about layout. Layering and import cycles are
// checked by dependency-cruiser (.dependency-cruiser.cjs), not here.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // .gitignore'd output, plus anything a bench run leaves behind.
    ignores: ['dist/**', 'node_modules/**', 'bench/out/**', '.tmp/**'],
  },
  {
    name: 'weft/typescript',
    files: ['{src,test,bench,examples}/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // Uses the tsconfig.json that covers each file, as tsc does.
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // node:test's test()/describe() return promises that the runner itself
      // awaits; flagging each of the ~200 top-level test() calls would be noise.
      // Every other unawaited promise is still reported.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      // The same exemptions as tsc's noUnusedParameters/noUnusedLocals, which
      // this project turns on: a parameter named _x is deliberately unused (the
      // no-op hooks of WsAppServiceBase), and `{ a: _a, ...rest }` drops keys.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // `interface GatewayOptions extends Static<typeof GATEWAY_OPTIONS> {}` names the
      // schema's type: users see "GatewayOptions" in hovers and errors, not its 20 fields.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
    },
  },
  {
    name: 'weft/config-files',
    files: ['*.js', '*.cjs'],
    // Plain JS, not in tsconfig.json, so no type information; ESLint gives the
    // .cjs file its CommonJS globals (module, require) by itself.
    extends: [js.configs.recommended],
  },
  prettier,
);
