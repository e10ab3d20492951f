// Reading `-f FILE` values and checking the mirror's part of them with the mirror's own schema
// (the chart cannot: its values.schema.json leaves mirror.config open).
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { parseHighWaterMark } from '../agent/index.js';
import { ConfigError, resolveMirrorConfig } from '../mirror/index.js';
import { InstallError } from './errors.js';
import { mirrorConfigFor } from './mirror.js';
import type { Values } from './values.js';

export async function readValuesFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InstallError(
      'VALUES_UNREADABLE',
      `values file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { cause: err },
    );
  }
  try {
    return parse(text) as unknown;
  } catch (err) {
    throw new InstallError(
      'VALUES_INVALID',
      `values file ${path} is not valid YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The values the chart's schema cannot check, with the components' own parsers: mirror.config as
 * `hoist mirror --config` reads it (passwordFile contents are not read), agent.diskHighWater as
 * `hoist agent --disk-high-water` does.
 */
export async function checkComponentValues(values: Values): Promise<void> {
  if (values.agent.enabled) {
    try {
      parseHighWaterMark(values.agent.diskHighWater);
    } catch (err) {
      throw new InstallError('VALUES_INVALID', `agent.diskHighWater: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  if (!values.mirror.enabled) return;
  try {
    await resolveMirrorConfig(mirrorConfigFor(values), {}, () => Promise.resolve(''));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const keyed = /^config: (.*)$/.exec(err.message);
    const message = keyed ? `mirror.config.${keyed[1]}` : `mirror.config: ${err.message}`;
    throw new InstallError('VALUES_INVALID', message, { cause: err });
  }
}
