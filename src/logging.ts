// The gateway's own logger: pino JSON lines on stdout, written asynchronously. pino's default
// stdout destination writes synchronously, so a slow reader of stdout (a log shipper, a full pipe)
// would stall the event loop and every request with it; with sync: false a line is handed to
// libuv and the request goes on. pino flushes what is still buffered when the process exits.

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/types.js';

export function createLogger(level: LogLevel, bindings: Record<string, unknown>): Logger {
  return pino({ level, base: bindings }, pino.destination({ dest: 1, sync: false }));
}
