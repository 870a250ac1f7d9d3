import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (apt-get install chromium); CHROMIUM_PATH overrides. Missing is a failure, not a skip. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`chromium not found at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-gl=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
  });
}

export interface RecordedRequest {
  method: string;
  url: string;
  status?: number;
  failure?: string;
}

/**
 * OHIF 3.13's own cancel path throws when a viewport switch cancels image loads still in flight
 * ("handler is not a function" in imageLoadFailedHandler): its bug, not an answer of the node
 * (whose failed or refused requests the viewer tests catch by their status). Console lines that
 * say so are not errors of the node under test.
 */
export function isOhifCancelBug(consoleText: string): boolean {
  return /imageLoadFailedHandler/.test(consoleText);
}
