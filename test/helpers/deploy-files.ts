/**
 * What the tests of deploy/ share: the image's settings as a container
 * resolves them (the Dockerfile's ENV, then src/config.ts's defaults), and
 * readers for Compose's port and duration syntax.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { resolveConfig, SETTINGS, type BrokerConfig } from '../../src/config';
import { parseDockerfile, type ImageConfig, type Stage } from '../../scripts/docker-replay';

export const ROOT = join(__dirname, '..', '..', '..');
export const DEPLOY = join(ROOT, 'deploy');
export const image: ImageConfig = (parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).at(-1) as Stage).config;
/** main.ts exits on its own at the latest this long after --drain-timeout + --shutdown-timeout. */
export const SHUTDOWN_GUARD_MS = 1000;
export const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/** The broker's settings in a container of the image, with `env` set on top of the image's. */
export function settingsWith(env: Record<string, string> = {}): BrokerConfig {
  return resolveConfig({}, { ...image.env, ...env });
}

/** The STRANDS_ environment variable of a setting. */
export function envName(key: keyof BrokerConfig): string {
  return SETTINGS.find((s) => s.key === key)?.env[0] as string;
}

export interface ComposeService {
  build?: { context: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { disable?: boolean; test?: unknown };
  stop_grace_period?: string;
}

/** A Compose file of deploy/, its anchors merged. */
export function readCompose(file: string): { services: Record<string, ComposeService> } {
  return parse(readFileSync(join(DEPLOY, file), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
}

/** Compose's short port syntax: [host ip:]host port:container port. */
export function published(spec: string): { hostIp: string | undefined; hostPort: number; containerPort: number } {
  const match = /^(?:([\d.]+|\[[\da-f:]+\]):)?(\d+):(\d+)(?:\/tcp)?$/.exec(spec);
  assert.ok(match, `the test reads the short port syntax only: ${spec}`);
  return { hostIp: match[1], hostPort: Number(match[2]), containerPort: Number(match[3]) };
}

/** Compose, Go and nginx durations as written here: 1m30s, 10s, 500ms. */
export function durationMs(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  assert.equal(parts.map((p) => p[0]).join(''), text, `not a duration: ${text}`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * (units[p[2] as string] as number), 0);
}
