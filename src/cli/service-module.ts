/**
 * Loading the ES module `weft host <module>` serves. The convention:
 *
 *   export const services = [implement(IGreeterAppService, greeter), ...];
 *   export const modules = [WebSocketModule]; // when a service extends WsAppServiceBase
 *
 * or the same two keys on the default export (`export default { services, modules }`).
 * `<module>` is a file path (relative to the current directory) or a package
 * name, resolved as an import from weft's own install would be, else from the
 * current directory.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WeftModule } from '../host/module.js';
import type { ServiceBinding } from '../host/service-binding.js';

/** A module that cannot be used, with why: the CLI prints it and exits 1. */
export class ModuleLoadError extends Error {}

export interface ServiceModule {
  readonly services: ServiceBinding[];
  readonly modules: WeftModule[];
  /** Where it was loaded from. */
  readonly url: string;
}

const CONVENTION =
  'export const services = [implement(IMyService, impl), ...] (and export const modules = [WebSocketModule] for WebSocket services), ' +
  'or export default { services, modules }';

function isPath(spec: string): boolean {
  return spec.startsWith('.') || path.isAbsolute(spec) || spec.startsWith('file:') || /\.[cm]?js$/.test(spec);
}

/** The cause of a failed import, with the first lines of its stack when they point into the module. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const at = (e.stack ?? '')
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .slice(0, 3);
  return `${e.name}: ${e.message}${at.length === 0 ? '' : `\n${at.join('\n')}`}`;
}

async function importModule(spec: string, cwd: string): Promise<{ namespace: Record<string, unknown>; url: string }> {
  if (isPath(spec)) {
    const url = spec.startsWith('file:') ? spec : pathToFileURL(path.resolve(cwd, spec)).href;
    const file = spec.startsWith('file:') ? new URL(spec).pathname : path.resolve(cwd, spec);
    if (!existsSync(file)) throw new ModuleLoadError(`cannot load ${spec}: there is no file ${file}`);
    try {
      return { namespace: (await import(url)) as Record<string, unknown>, url };
    } catch (e) {
      throw new ModuleLoadError(`cannot load ${spec} (${file}): ${describe(e)}`);
    }
  }
  // A package name: first as weft's own imports see it (the project weft is installed in), then from the current directory.
  try {
    return { namespace: (await import(spec)) as Record<string, unknown>, url: spec };
  } catch (e) {
    const notFound = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && (e as Error).message.includes(`'${spec}'`);
    if (!notFound) throw new ModuleLoadError(`cannot load the package ${spec}: ${describe(e)}`);
  }
  let resolved: string;
  try {
    resolved = createRequire(path.join(cwd, 'weft-host.js')).resolve(spec);
  } catch {
    throw new ModuleLoadError(
      `cannot find the package ${spec} from ${cwd} or from weft's install: is it installed? (a file path starts with ./ or /)`,
    );
  }
  const url = pathToFileURL(resolved).href;
  try {
    return { namespace: (await import(url)) as Record<string, unknown>, url };
  } catch (e) {
    throw new ModuleLoadError(`cannot load the package ${spec} (${resolved}): ${describe(e)}`);
  }
}

function isServiceBinding(value: unknown): value is ServiceBinding {
  const binding = value as Partial<ServiceBinding> | null | undefined;
  return typeof binding?.contract?.descriptor === 'object' && typeof binding.create === 'function';
}

function isWeftModule(value: unknown): value is WeftModule {
  return typeof (value as Partial<WeftModule> | null)?.setup === 'function';
}

/** Loads `spec` and returns what it exports for a host, or explains what it should export. */
export async function loadServiceModule(spec: string, cwd: string = process.cwd()): Promise<ServiceModule> {
  const { namespace, url } = await importModule(spec, cwd);
  const fallback = namespace['default'];
  const fromDefault = fallback !== null && typeof fallback === 'object' ? (fallback as Record<string, unknown>) : {};
  const named = 'services' in namespace;
  const services = named ? namespace['services'] : fromDefault['services'];
  const modules = (named ? namespace['modules'] : fromDefault['modules']) ?? [];
  const where = named ? 'export services' : 'the default export\u2019s services';
  if (services === undefined) {
    const names = Object.keys(namespace);
    throw new ModuleLoadError(
      `${spec} exports no services (it exports ${names.length === 0 ? 'nothing' : names.join(', ')}): a module for weft host has ${CONVENTION}`,
    );
  }
  if (!Array.isArray(services) || services.length === 0) {
    throw new ModuleLoadError(`${where} of ${spec} must be a non-empty array of implement(contract, implementation) values: ${CONVENTION}`);
  }
  const bad = services.findIndex((s) => !isServiceBinding(s));
  if (bad >= 0) {
    throw new ModuleLoadError(
      `${where}[${bad}] of ${spec} is not an implement(contract, implementation) value (is it a contract, or the implementation alone?)`,
    );
  }
  if (!Array.isArray(modules) || !modules.every(isWeftModule)) {
    throw new ModuleLoadError(`the modules of ${spec} must be an array of weft modules, e.g. [WebSocketModule]`);
  }
  return { services: services as ServiceBinding[], modules, url };
}
