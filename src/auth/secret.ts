import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';

/**
 * The key tokens are signed with. Configured (`SECRET_KEY`, required online), or for an offline
 * node a random key created once under DATA_DIR: a shared built-in default would let anyone
 * forge tokens for every install.
 */
export function resolveSecretKey(config: Config): string {
  if (!config.auth.secretKeyIsDefault) return config.auth.secretKey;
  const file = path.join(config.dataDir, 'secret.key');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    fs.mkdirSync(config.dataDir, { recursive: true });
    const key = randomBytes(48).toString('base64');
    fs.writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  }
}
