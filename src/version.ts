import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let version: string | undefined;

/** This package's version, from the package.json beside dist/ (in a checkout and in an installed package); read once. */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}
