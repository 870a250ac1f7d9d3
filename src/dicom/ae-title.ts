import { z } from 'zod';

/** AE VR (PS3.5 6.2): 1-16 characters of the default repertoire, no backslash or control characters; padding is not significant. */
export const aeTitleSchema = z
  .string()
  .trim()
  .min(1)
  .max(16)
  .regex(/^[\x20-\x5b\x5d-\x7e]+$/, 'AE titles are 1-16 printable ASCII characters without backslash');
