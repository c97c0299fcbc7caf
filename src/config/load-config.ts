import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RxferError } from '../errors/rxfer-error';
import { RxferConfig, RxferConfigInput, configSchema } from './config.schema';

/** Command-line flags that override the file, as `rxfer serve` accepts them. */
export interface ConfigOverrides {
  readonly host?: string;
  readonly port?: number;
  readonly root?: string;
  /** `--metrics-port`: turns the operations listener on (0 for any free port). */
  readonly metricsPort?: number;
}

export interface LoadConfigOptions {
  /** A JSON file; without one the embedded defaults are used. */
  readonly configPath?: string;
  readonly overrides?: ConfigOverrides;
}

const describeIssue = (issue: z.core.$ZodIssue): string => {
  const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
  return `${key}: ${issue.message}`;
};

/** Validates a config value; an error names every bad key and what was expected there. */
export const parseConfig = (input: unknown, source = 'config'): RxferConfig => {
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map(describeIssue).join('; ');
  throw new RxferError('CONFIG_INVALID', `${source}: ${problems}`);
};

const readJson = (path: string): unknown => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RxferError('CONFIG_INVALID', `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RxferError('CONFIG_INVALID', `${path}: not valid JSON (${(err as Error).message})`);
  }
};

const applyOverrides = (input: RxferConfigInput, overrides: ConfigOverrides): RxferConfigInput => ({
  ...input,
  server: {
    ...input.server,
    ...(overrides.host !== undefined && { host: overrides.host }),
    ...(overrides.port !== undefined && { port: overrides.port }),
  },
  storage: { ...input.storage, ...(overrides.root !== undefined && { kind: 'local', root: overrides.root }) },
  ...(overrides.metricsPort !== undefined && { metrics: { ...input.metrics, port: overrides.metricsPort } }),
});

/** File (or defaults), then flags, then one validation over the result. */
export const loadConfig = ({ configPath, overrides = {} }: LoadConfigOptions = {}): RxferConfig => {
  const fromFile = configPath === undefined ? {} : readJson(configPath);
  if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
    throw new RxferError('CONFIG_INVALID', `${configPath}: the top level must be a JSON object`);
  }
  return parseConfig(applyOverrides(fromFile as RxferConfigInput, overrides), configPath ?? 'config');
};
