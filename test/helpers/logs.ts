// The gateway's log lines, captured and parsed, so tests can assert structured events and access
// log fields as an operator's log pipeline would see them.
import { Writable } from 'node:stream';
import pino from 'pino';

export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly logger = pino(
    { level: 'info' },
    new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );

  /** Lines with this `event` field (ejections, reloads, ...). */
  events(name: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l.event === name);
  }

  /** Access-log lines (`msg: "request"`). */
  requests(): Record<string, unknown>[] {
    return this.lines.filter((l) => l.msg === 'request');
  }
}
