/**
 * Every function and class the package entry points export at run time, and
 * the methods users call on the objects they get (SessionManager,
 * ClusterClient, Host, Gateway, ClientSession), has a JSDoc `@example`; and
 * every `@example` on the entry points' exports compiles against the
 * published types, as the README's snippets do (`'weft'` and `'weft/client'`
 * resolve to dist/src through package.json's exports).
 *
 * The examples are read from src/ with the TypeScript compiler API. Each is
 * compiled as a module of its own, all in one program, with:
 *   - an import of the package's names it does not declare itself (what an
 *     editor would add; unused ones are not reported),
 *   - PRELUDE below for the few free names examples share (`cluster`, `host`,
 *     `IWsTestAppService`, `sessionId`...),
 *   - when it uses `this` at its top (`this.sessionManager`), a wrapper:
 *     the body of a method of a class that extends WsAppServiceBase.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT, typecheck } from './helpers/typecheck.js';

/** The package's entry points: what users import, and the source that declares it. */
const ENTRIES = [
  { specifier: 'weft', source: 'src/index.ts' },
  { specifier: 'weft/client', source: 'src/client/index.ts' },
] as const;

/** Exported types (interfaces, or classes exported as types) whose methods users call. */
const CALLED_TYPES = new Set(['SessionManager', 'ClusterClient', 'Host', 'Gateway', 'ClientSession']);

/** The free names examples share. Real package types; values declared, contracts defined as users would. */
const PRELUDE = `
import { Type, WsAppServiceBase, defineContract, param, type Cluster, type Host, type Implementation } from 'weft';

/** memoryCluster() or redisCluster({ ... }). */
export declare const cluster: Cluster;
/** A started host: await createHost({ cluster, services }).start(). */
export declare const host: Host;
export declare const businessId: string;
export declare const sessionId: string;

export const IGreeterAppService = defineContract({
  name: 'IGreeterAppService',
  methods: { greet: { params: [param('name', Type.String())], returns: Type.String() } },
});

export const IWsTestAppService = defineContract({
  name: 'IWsTestAppService',
  methods: {
    echo: { params: [param('businessId', Type.String()), param('msg', Type.String())], returns: Type.Integer(), select: { hashBy: 'businessId' } },
  },
});

/** A WebSocket contract with pushes and client messages. */
export const IShopAppService = defineContract({
  name: 'IShopAppService',
  methods: { ship: { params: [param('businessId', Type.String()), param('orderId', Type.String())], returns: Type.Integer() } },
  pushes: { orderShipped: Type.Object({ orderId: Type.String(), at: Type.Integer() }) },
  messages: { typing: { params: Type.Object({ room: Type.String() }), returns: Type.Object({ seen: Type.String() }) } },
});

export declare class WsTestAppService extends WsAppServiceBase implements Implementation<typeof IWsTestAppService> {
  echo(businessId: string, msg: string): Promise<number>;
}
`;

// A folder that exists, so the examples' relative import of the prelude resolves.
const TYPES_DIR = path.join(ROOT, 'test', 'fixtures');
const PRELUDE_FILE = path.join(TYPES_DIR, 'jsdoc-prelude.mts');
const PRELUDE_MODULE = './jsdoc-prelude.mjs';

/** A documented symbol: `weft createHost`, `weft SessionManager.pushToBusiness`. */
interface Documented {
  readonly label: string;
  /** Must have an example (a function, a class, a method users call). */
  readonly required: boolean;
  readonly examples: string[];
}

/** A name an entry point exports, for the imports added to examples. */
interface ExportedName {
  readonly name: string;
  readonly specifier: string;
  readonly isType: boolean;
}

function examplesOf(node: ts.Node): string[] {
  return ts
    .getJSDocTags(node)
    .filter((tag) => tag.tagName.text === 'example')
    .map((tag) => ts.getTextOfJSDocComment(tag.comment) ?? '');
}

function isInternal(node: ts.Node): boolean {
  return ts.getJSDocTags(node).some((tag) => tag.tagName.text === 'internal');
}

function isPublicMember(member: ts.ClassElement | ts.TypeElement): boolean {
  if (member.name === undefined || ts.isPrivateIdentifier(member.name) || isInternal(member)) return false;
  const flags = ts.getCombinedModifierFlags(member);
  return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
}

function isFunctionLike(node: ts.Node | undefined): boolean {
  return node !== undefined && (ts.isArrowFunction(node) || ts.isFunctionExpression(node));
}

/** Reads the entry points' exports and their JSDoc from src/. */
function readSources(): { documented: Documented[]; names: ExportedName[] } {
  const srcDir = `${path.join(ROOT, 'src')}/`;
  // Exports and comments only, no type check: src/ alone, with no lib and no dependency's types (an empty module each).
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noLib: true,
    types: [],
    noEmit: true,
  };
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, languageVersion, ...rest) =>
    f.startsWith(srcDir) ? getSourceFile(f, languageVersion, ...rest) : ts.createSourceFile(f, '', languageVersion, true);
  const program = ts.createProgram({ rootNames: ENTRIES.map((e) => path.join(ROOT, e.source)), options, host });
  const checker = program.getTypeChecker();
  const bySymbol = new Map<string, { required: boolean; examples: string[] }>();
  const names: ExportedName[] = [];
  const note = (label: string, required: boolean, examples: string[]): void => {
    const known = bySymbol.get(label);
    if (known === undefined) bySymbol.set(label, { required, examples: [...examples] });
    else {
      known.required ||= required;
      known.examples.push(...examples);
    }
  };

  for (const entry of ENTRIES) {
    const file = program.getSourceFile(path.join(ROOT, entry.source));
    assert.ok(file !== undefined, `${entry.source} is in the program`);
    const moduleSymbol = checker.getSymbolAtLocation(file);
    assert.ok(moduleSymbol !== undefined, `${entry.source} is a module`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const name = exported.getName();
      const specifier = exported.declarations?.find(ts.isExportSpecifier);
      const typeOnly = specifier !== undefined && (specifier.isTypeOnly || specifier.parent.parent.isTypeOnly);
      const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const isValue = !typeOnly && (target.flags & ts.SymbolFlags.Value) !== 0;
      names.push({ name, specifier: entry.specifier, isType: !isValue });
      const label = `${entry.specifier} ${name}`;
      for (const declaration of target.declarations ?? []) {
        // Re-exports of other packages (TypeBox's Type) are documented there.
        if (!declaration.getSourceFile().fileName.startsWith(srcDir)) continue;
        if (ts.isFunctionDeclaration(declaration)) {
          note(label, isValue, examplesOf(declaration));
        } else if (ts.isVariableDeclaration(declaration)) {
          note(label, isValue && isFunctionLike(declaration.initializer), examplesOf(declaration));
        } else if (ts.isClassDeclaration(declaration) || ts.isInterfaceDeclaration(declaration)) {
          const called = CALLED_TYPES.has(name);
          note(label, isValue && ts.isClassDeclaration(declaration), examplesOf(declaration));
          if (!(isValue && ts.isClassDeclaration(declaration)) && !called) continue;
          for (const member of declaration.members) {
            const isMethod = ts.isMethodDeclaration(member) || ts.isMethodSignature(member);
            if (!isMethod || !isPublicMember(member)) continue;
            note(`${label}.${member.name.getText()}`, true, examplesOf(member));
          }
        } else {
          note(label, false, examplesOf(declaration));
        }
      }
    }
  }
  const documented = [...bySymbol].map(([label, { required, examples }]) => ({ label, required, examples }));
  return { documented, names };
}

/** Does the example use `this` outside any function or class of its own (a method body's code)? */
function usesOuterThis(source: ts.SourceFile): boolean {
  const visit = (node: ts.Node): boolean => {
    if (node.kind === ts.SyntaxKind.ThisKeyword) return true;
    if (ts.isFunctionLike(node) && !ts.isArrowFunction(node)) return false;
    if (ts.isClassLike(node)) return false;
    return ts.forEachChild(node, visit) ?? false;
  };
  return visit(source);
}

function bindingNames(name: ts.BindingName, out: Set<string>): void {
  if (ts.isIdentifier(name)) out.add(name.text);
  else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bindingNames(element.name, out);
}

/** Names the example declares or imports at its top level (not to import again). */
function topLevelNames(source: ts.SourceFile): Set<string> {
  const out = new Set<string>();
  for (const statement of source.statements) {
    if (ts.isVariableStatement(statement)) for (const d of statement.declarationList.declarations) bindingNames(d.name, out);
    else if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.name !== undefined) out.add(clause.name.text);
      const bindings = clause?.namedBindings;
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) out.add(bindings.name.text);
      if (bindings !== undefined && ts.isNamedImports(bindings)) for (const s of bindings.elements) out.add(s.name.text);
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement)) &&
      statement.name !== undefined
    ) {
      out.add(statement.name.text);
    }
  }
  return out;
}

/**
 * Diagnostics of an unused name. The added imports bring what any example
 * might use; and an example is a fragment: `const ids = await ...` shows the
 * call, what the reader does with `ids` comes after.
 */
const UNUSED = new Set([6133, 6192, 6196, 6198]);

interface Example {
  readonly label: string;
  readonly file: string;
  readonly text: string;
  /** Lines added before the example's first line. */
  readonly offset: number;
}

/** The example as a module: the imports it lacks, the wrapper when it is a method body's code. */
function exampleModule(label: string, index: number, code: string, names: readonly ExportedName[], preludeNames: readonly string[]): Example {
  const source = ts.createSourceFile('example.mts', code, ts.ScriptTarget.ES2022, true);
  const declared = topLevelNames(source);
  const imports = (specifier: string, list: readonly ExportedName[]): string => {
    const wanted = list.filter((n) => n.specifier === specifier && !declared.has(n.name)).map((n) => (n.isType ? `type ${n.name}` : n.name));
    return wanted.length === 0 ? '' : `import { ${wanted.join(', ')} } from '${specifier}'; `;
  };
  const prelude = preludeNames.map((name) => ({ name, specifier: PRELUDE_MODULE, isType: false }));
  const header = `${imports('weft', names)}${imports('weft/client', names)}${imports(PRELUDE_MODULE, prelude)}\n`;
  const file = path.join(TYPES_DIR, `jsdoc-${index}.mts`);
  if (usesOuterThis(source)) {
    return { label, file, text: `${header}export class JsdocExample extends WsAppServiceBase { async run() {\n${code}\n} }\n`, offset: 2 };
  }
  return { label, file, text: `${header}${code}\nexport {};\n`, offset: 1 };
}

function describe(d: ts.Diagnostic, offset: number): string {
  const line = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 - offset : 0;
  return `line ${line} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
}

const { documented, names } = readSources();

test('every exported function and class, and every method users call, has a JSDoc @example', (t) => {
  const required = documented.filter((d) => d.required);
  t.diagnostic(`${required.length} functions, classes and methods need an example`);
  // The surface is read, not listed by hand: a sanity check that it was found.
  for (const label of [
    'weft createHost',
    'weft WeftError',
    'weft SessionManager.pushToBusiness',
    'weft ClusterClient.sessions',
    'weft/client connectSession',
  ]) {
    assert.ok(
      required.some((d) => d.label === label),
      `${label} is among the symbols that need an example`,
    );
  }
  assert.deepEqual(
    required.filter((d) => d.examples.every((e) => e.trim() === '')).map((d) => `${d.label} has no @example`),
    [],
  );
});

test("every @example of the package's exports compiles against the published types", (t) => {
  const preludeNames = [...PRELUDE.matchAll(/^export (?:declare )?(?:const|class) (\w+)/gm)].map((m) => m[1]!);
  const examples = documented.flatMap((d) => d.examples.filter((e) => e.trim() !== '').map((code) => ({ label: d.label, code })));
  const modules = examples.map((e, i) => exampleModule(e.label, i, e.code, names, preludeNames));
  const files = new Map([[PRELUDE_FILE, PRELUDE], ...modules.map((m): [string, string] => [m.file, m.text])]);
  const found = typecheck(files);
  assert.deepEqual(
    found.get(PRELUDE_FILE)!.map((d) => describe(d, 0)),
    [],
    'the prelude compiles',
  );
  const failures = modules.flatMap((m) =>
    found
      .get(m.file)!
      .filter((d) => !UNUSED.has(d.code))
      .map((d) => `${m.label}: ${describe(d, m.offset)}\n${m.text.split('\n').slice(m.offset).join('\n')}`),
  );
  t.diagnostic(`${examples.length} examples compiled`);
  if (failures.length > 0) assert.fail(`${failures.length} diagnostics in examples:\n\n${failures.join('\n\n')}`);
  assert.ok(examples.length >= 50, `found ${examples.length} examples`);
});
