/**
 * The tables of docs/options.md, rendered from the option declarations, so
 * an option cannot exist without its row (test/options-doc.test.ts compares).
 * `npm run docs:options` writes them into the page; the prose around them
 * is left as it is.
 */
import type { TProperties, TSchema } from '@sinclair/typebox';
import { DEFAULT_ENTRIES, type DefaultEntry } from './defaults.js';
import { GATEWAY_OWN_OPTION_PROPERTIES } from './gateway/gateway-options.js';
import { HOST_OWN_OPTION_PROPERTIES } from './host/host-options.js';
import { NODE_OPTION_PROPERTIES } from './node/node-options.js';
import { REDIS_CLUSTER_OPTION_PROPERTIES } from './node/redis-cluster-options.js';
import { WS_HISTORY_OPTION_PROPERTIES } from './websocket/history-options.js';
import { isGroup, isOptional, optionDefault, optionInfo, type Unit } from './options/schema.js';

const KIB = 1024;
const MIB = 1024 * 1024;

/** `1048576` reads better with `(1 MiB)` after it. */
function sizeNote(bytes: unknown): string | undefined {
  if (typeof bytes !== 'number' || bytes < KIB) return undefined;
  if (bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes % KIB === 0) return `${bytes / KIB} KiB`;
  return undefined;
}

/** A table cell: a `|` of the text must not end the cell. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function row(cells: readonly string[]): string {
  return `| ${cells.map(cell).join(' | ')} |`;
}

function code(value: unknown): string {
  return value === '' ? "`''`" : `\`${String(value)}\``;
}

function showDefault(schema: TSchema, unit: Unit | undefined, note: string | undefined): string {
  const value = optionDefault(schema);
  if (value === undefined) return isOptional(schema) ? (note ?? 'none') : '-';
  let shown: string;
  if (Array.isArray(value)) shown = value.length === 0 ? '`[]`' : value.map(code).join(', ');
  else shown = code(value);
  const notes = [unit === 'bytes' ? sizeNote(value) : undefined, note].filter((n) => n !== undefined);
  return notes.length === 0 ? shown : `${shown} (${notes.join('; ')})`;
}

/** One row per option of `properties`, nested ones as `parent.child`. */
export function optionRows(properties: TProperties, prefix = ''): string[] {
  const rows: string[] = [];
  for (const [key, schema] of Object.entries(properties)) {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    const info = optionInfo(schema);
    // A section is only its options; a record has a row of its own too.
    if (info !== undefined) rows.push(row([`\`${name}\``, info.docType, showDefault(schema, info.unit, info.defaultNote), info.description]));
    if (isGroup(schema)) rows.push(...optionRows(schema.properties, name));
  }
  return rows;
}

/** The markdown table of `properties`: option, type, default, meaning. */
export function optionsTable(properties: TProperties): string {
  return [row(['option', 'type', 'default', 'meaning']), row(['---', '---', '---', '---']), ...optionRows(properties)].join('\n');
}

function unitCell(entry: DefaultEntry<unknown>): string {
  if (entry.unit === undefined) return '-';
  const size = entry.unit === 'bytes' ? sizeNote(entry.value) : undefined;
  return size === undefined ? entry.unit : `${entry.unit} (${size})`;
}

function setByCell(entry: DefaultEntry<unknown>): string {
  const by = entry.setBy;
  if ('fixed' in by) return `fixed: ${by.fixed}`;
  return by.of === undefined ? `\`${by.option}\`` : `\`${by.option}\` (${by.of})`;
}

/** The table of every key of DEFAULTS: value, unit, and the option that sets it. */
export function defaultsTable(entries: Readonly<Record<string, DefaultEntry<unknown>>> = DEFAULT_ENTRIES): string {
  const rows = Object.entries(entries).map(([key, entry]) => {
    const value = Array.isArray(entry.value) ? entry.value.join(', ') : entry.value;
    return row([`\`${key}\``, code(value), unitCell(entry), setByCell(entry)]);
  });
  return [row(['key', 'value', 'unit', 'set by']), row(['---', '---', '---', '---']), ...rows].join('\n');
}

/** Each generated table of docs/options.md, by the `## ` heading of its section, in page order. */
export function optionsDocTables(): { heading: string; table: string }[] {
  return [
    { heading: 'Node options (hosts and gateways)', table: optionsTable(NODE_OPTION_PROPERTIES) },
    { heading: 'createHost', table: optionsTable(HOST_OWN_OPTION_PROPERTIES) },
    { heading: 'createGateway', table: optionsTable(GATEWAY_OWN_OPTION_PROPERTIES) },
    { heading: 'redisCluster', table: optionsTable(REDIS_CLUSTER_OPTION_PROPERTIES) },
    { heading: 'WebSocket service history', table: optionsTable(WS_HISTORY_OPTION_PROPERTIES) },
    { heading: 'All defaults', table: defaultsTable() },
  ];
}

/** The blocks of table lines of a markdown page, with the `## ` heading each is under. */
export function markdownTables(markdown: string): { heading: string; table: string; start: number; end: number }[] {
  const lines = markdown.split('\n');
  const tables: { heading: string; table: string; start: number; end: number }[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) heading = line.slice(3).trim();
    if (!line.startsWith('|')) continue;
    let end = i;
    while (end + 1 < lines.length && lines[end + 1]!.startsWith('|')) end++;
    tables.push({ heading, table: lines.slice(i, end + 1).join('\n'), start: i, end });
    i = end;
  }
  return tables;
}

/**
 * The page with each generated table in place of the first table under its
 * heading; throws when a heading or its table is missing, since then the
 * page has drifted from the declarations in a way only a person can fix.
 */
export function renderOptionsDoc(markdown: string): string {
  const lines = markdown.split('\n');
  const found = markdownTables(markdown);
  const replacements = optionsDocTables().map(({ heading, table }) => {
    const target = found.find((t) => t.heading === heading);
    if (target === undefined) throw new Error(`docs/options.md has no table under "## ${heading}"`);
    return { target, table };
  });
  // From the bottom up, so the line numbers of the tables above stay right.
  replacements.sort((a, b) => b.target.start - a.target.start);
  for (const { target, table } of replacements) lines.splice(target.start, target.end - target.start + 1, ...table.split('\n'));
  return lines.join('\n');
}
