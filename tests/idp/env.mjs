// Settings from the environment, shared by the test services (provider.mjs, cache.mjs,
// ci-issuer.mjs, service.mjs).
//
// `die` prints `<script>: <message>` to stderr (the script's file name without `.mjs`,
// e.g. `provider: ...`) and exits with status 2.

import * as path from 'node:path';
import process from 'node:process';

// The running script's name, for its stderr lines.
export const SCRIPT = path.basename(process.argv[1] ?? 'node', '.mjs');

export function die(message) {
  process.stderr.write(`${SCRIPT}: ${message}\n`);
  process.exit(2);
}

// The variable's value; `fallback` when it is unset or empty.
export function env(name, fallback) {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

// A non-negative integer; dies on anything else.
export function envInt(name, fallback) {
  const raw = env(name, undefined);
  if (raw === undefined) return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isSafeInteger(value) || value < 0 || String(value) !== raw.trim()) {
    die(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

// 1/true/yes/on or 0/false/no/off (any case); dies on anything else.
export function envBool(name, fallback) {
  const raw = env(name, undefined);
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  return die(`${name} must be a boolean (1/0/true/false), got ${JSON.stringify(raw)}`);
}
