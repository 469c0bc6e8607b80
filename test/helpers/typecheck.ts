/**
 * Type-checks in-memory TypeScript files under the project's own compiler
 * options, in one program (creating it is the slow part). Used by tests
 * that show what compiles and what must not.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Diagnostics of each virtual file (by absolute path). */
export function typecheck(files: ReadonlyMap<string, string>): Map<string, readonly ts.Diagnostic[]> {
  const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  assert.equal(config.error, undefined, 'tsconfig.json reads');
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  // The project's options, minus what only matters for writing files.
  const options: ts.CompilerOptions = { ...parsed.options, noEmit: true, incremental: false, declaration: false, sourceMap: false };
  delete options.tsBuildInfoFile;
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.fileExists = (f) => files.has(f) || fileExists(f);
  host.readFile = (f) => files.get(f) ?? readFile(f);
  host.getSourceFile = (f, languageVersion, onError, shouldCreate) => {
    const text = files.get(f);
    return text === undefined ? getSourceFile(f, languageVersion, onError, shouldCreate) : ts.createSourceFile(f, text, languageVersion, true);
  };
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host });
  assert.deepEqual(
    [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    [],
    'the compiler options are valid',
  );
  const out = new Map<string, readonly ts.Diagnostic[]>();
  for (const file of files.keys()) {
    const sf = program.getSourceFile(file);
    assert.ok(sf !== undefined, `${file} is in the program`);
    out.set(file, [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]);
  }
  return out;
}

/** A diagnostic as one line: `line N TScode: message`. */
export function describeDiagnostic(d: ts.Diagnostic): string {
  const line = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
  return `line ${line} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
}
