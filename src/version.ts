import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** This package's version, from the package.json beside dist/ (in a checkout and in an installed package). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}
