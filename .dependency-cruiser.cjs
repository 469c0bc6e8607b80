// @ts-check
/**
 * dependency-cruiser rules: the layers of src/ and no import cycles, between
 * files or between folders. `npm run lint` runs it as
 *   depcruise src test bench examples --config .dependency-cruiser.cjs
 * and fails on any error. `npx depcruise src --config .dependency-cruiser.cjs -T err-long`
 * prints each rule's comment with its violations.
 *
 * Layers, top to bottom. A module may import its own layer and the layers
 * below it, never one above; within a layer, the few orders written in
 * SAME_LAYER_ORDER hold, and no cycle is allowed anywhere (files or folders).
 * Type-only imports count like any other: a type is coupling too.
 */

/** @param {string[]} alternatives regexes @returns {string} one regex that matches any of them */
const anyOf = (alternatives) => `^(?:${alternatives.join('|')})`;

const LAYERS = [
  // defaults.ts and options-doc.ts gather every role's option schema, so they sit with the index.
  { name: 'top', paths: ['src/cli/', 'src/index\\.ts$', 'src/defaults\\.ts$', 'src/options-doc\\.ts$'] },
  { name: 'gateway', paths: ['src/gateway/'] },
  { name: 'host-websocket', paths: ['src/host/', 'src/websocket/', 'src/cluster-client/'] },
  { name: 'push', paths: ['src/push/'] },
  { name: 'node', paths: ['src/node/'] },
  { name: 'rpc', paths: ['src/rpc/'] },
  { name: 'infra', paths: ['src/transport/', 'src/registry/', 'src/directory/', 'src/history/', 'src/redis/'] },
  { name: 'pure', paths: ['src/contract/', 'src/protocol/'] },
  { name: 'base', paths: ['src/errors\\.ts$', 'src/logger\\.ts$', 'src/limits\\.ts$', 'src/options/', 'src/util/', 'src/metrics/', 'src/tracing/'] },
];
/** The browser client: outside the layers, and may import only src/util/ and itself. */
const CLIENT = ['src/client/', 'src/util/', 'src/protocol/weft-v1\\.ts$'];
/** Every path that belongs somewhere; anything else under src/ is a module with no layer. */
const ALL_KNOWN = [...LAYERS.flatMap((l) => l.paths), ...CLIENT];

/** Orders inside one layer: `from` must not import `to`. */
const SAME_LAYER_ORDER = [
  { from: 'src/host/', to: 'src/websocket/', why: 'websocket builds on host; host must not know websocket.' },
  { from: 'src/registry/', to: 'src/directory/', why: 'directory builds on registry and redis.' },
  { from: 'src/redis/', to: 'src/(?:registry|directory|history)/', why: 'redis is the connection under registry, directory and history.' },
];

/**
 * A folder counts with its sub-folders (dependency-cruiser's folder scope), so
 * src/gateway/*.ts <-> src/gateway/front-door/ is one folder's inside and not a
 * folder cycle; only file cycles are caught there. Set this to true to forbid
 * that too: then a file in a sub-folder of a layer folder (src/gateway/front-door/x.ts)
 * must not import the files at the top of that folder (src/gateway/*.ts), and
 * what both need goes into a sibling sub-folder (src/gateway/http/).
 */
const STRICT_SUBFOLDERS = false;

/** contract/ and protocol/ are pure: no node: built-in and only these npm packages. */
const PURE_NPM_ALLOWED = ['@sinclair/typebox', 'msgpackr'];

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const layerRules = LAYERS.map((layer, i) => ({
  name: `layer-${layer.name}`,
  severity: 'error',
  comment:
    `src/ layer "${layer.name}" may import only its own layer and the ones below it ` +
    `(${LAYERS.slice(i)
      .map((l) => l.name)
      .join(', ')}). Move the shared code down a layer, or invert the dependency (a callback or an interface owned below).`,
  from: { path: anyOf(layer.paths) },
  // Allow-list, so an import into a folder that has no layer yet fails too.
  to: { path: '^src/', pathNot: anyOf(LAYERS.slice(i).flatMap((l) => l.paths)) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycle between files. Break it by moving what both need into a module below them both.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycle',
      severity: 'error',
      comment:
        'Import cycle between folders (even when no file cycle exists). A folder counts with its sub-folders, ' +
        'so src/gateway/front-door/ <-> src/gateway/http/ is caught, src/gateway/*.ts <-> src/gateway/front-door/ is not.',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    ...SAME_LAYER_ORDER.map((o) => ({
      name: 'layer-order-within',
      severity: /** @type {const} */ ('error'),
      comment: `${o.from} must not import ${o.to}: ${o.why}`,
      from: { path: `^${o.from}` },
      to: { path: `^${o.to}` },
    })),
    ...(STRICT_SUBFOLDERS
      ? [
          {
            name: 'no-import-of-parent-folder',
            severity: /** @type {const} */ ('error'),
            comment:
              'A sub-folder must not import the files at the top of its layer folder (STRICT_SUBFOLDERS): move what both need into a sibling sub-folder.',
            from: { path: '^(src/[^/]+/)[^/]+/' },
            to: { path: '^$1[^/]+$' },
          },
        ]
      : []),
    {
      name: 'no-layer',
      severity: 'error',
      comment: `This module under src/ is in no layer: put it in one of the folders that .dependency-cruiser.cjs lists, or add its folder to LAYERS there.`,
      from: { path: '^src/', pathNot: anyOf(ALL_KNOWN) },
      to: {},
    },
    {
      name: 'pure-no-io',
      severity: 'error',
      comment: `src/contract/ and src/protocol/ are pure: no node: built-in, no npm package but ${PURE_NPM_ALLOWED.join(', ')}, no logger.`,
      from: { path: '^src/(?:contract|protocol)/' },
      to: {
        pathNot: ['^src/', ...PURE_NPM_ALLOWED.map((p) => `(?:^|/)node_modules/${p}/`)].join('|'),
      },
    },
    {
      name: 'pure-no-logger',
      severity: 'error',
      comment: 'src/contract/ and src/protocol/ are pure: logging is I/O.',
      from: { path: '^src/(?:contract|protocol)/' },
      to: { path: '^src/logger\\.ts$' },
    },
    {
      name: 'client-standalone',
      severity: 'error',
      comment: 'src/client/ is the browser client: it may import only src/client/ and src/util/.',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: anyOf(CLIENT) },
    },
    {
      name: 'client-standalone-reach',
      severity: 'error',
      comment:
        'src/client/ ships to browsers: nothing outside src/client/ and src/util/ may be reachable from it, ' +
        'so the src/util/ modules it uses must stay self-contained.',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: anyOf(CLIENT), reachable: true },
    },
    {
      name: 'client-no-node',
      severity: 'error',
      comment: 'src/client/ ships to browsers: no node: built-ins and no npm packages (the caller passes its WebSocket).',
      from: { path: '^src/client/' },
      to: { pathNot: '^src/' },
    },
    {
      name: 'not-to-client',
      severity: 'error',
      comment: 'The server side must not import the browser client (a separate entry point, weft/client).',
      from: { path: '^src/', pathNot: '^src/client/' },
      to: { path: '^src/client/' },
    },
    {
      name: 'src-not-to-tests',
      severity: 'error',
      comment: 'src/ is the package: it must not import test/, bench/ or examples/.',
      from: { path: '^src/' },
      to: { path: '^(?:test|bench|examples)/' },
    },
    {
      name: 'src-not-to-dev-dep',
      severity: 'error',
      comment: 'src/ must not import a devDependency: installs of weft do not have it. Move it to dependencies.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import that does not resolve (a typo, or a .js specifier with no .ts beside it). It is also a hole in ' +
        'the rules above, which only see resolved imports.',
      from: {},
      // examples/ import the package by its own name ('weft', 'weft/client'), which
      // resolves through package.json "exports" to dist/ (tsc maps it back to src/);
      // those edges cannot make a cycle, since src/ must not import examples/.
      to: { couldNotResolve: true, pathNot: '^weft(?:/client)?$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    // Parse the .ts sources themselves, so type-only imports are seen too.
    tsPreCompilationDeps: true,
    // NodeNext: './x.js' specifiers resolve to the ./x.ts beside them.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
