/**
 * Writes the tables of docs/options.md from the option declarations
 * (`npm run docs:options`); the prose around them is kept as it is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderOptionsDoc } from '../src/options-doc.js';

const file = new URL('../../docs/options.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = renderOptionsDoc(before);
writeFileSync(file, after);
console.log(after === before ? 'docs/options.md is up to date' : 'docs/options.md rewritten');
