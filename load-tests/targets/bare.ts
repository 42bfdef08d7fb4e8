// Baseline target: fastify 5 + @fastify/http-proxy, fixed upstream (the round's first endpoint).
import { BARE_PROXY } from '../harness/paths.js';
import { ManagedProcess, freePorts, waitForHttp } from '../harness/processes.js';
import type { RoundContext, RunningTarget, Target } from '../harness/target.js';

export function bareProxyTarget(options: { name?: string; prefix?: string } = {}): Target {
  const prefix = options.prefix ?? '/api';
  return {
    name: options.name ?? 'bare',
    description: `fastify 5 + @fastify/http-proxy, one fixed upstream endpoint, prefix ${prefix}, logger off`,
    async start(context: RoundContext): Promise<RunningTarget> {
      const upstream = context.upstreams[0];
      if (upstream === undefined) throw new Error('no upstream endpoint in this round');
      const [port] = await freePorts(1);
      const proc = new ManagedProcess('bare proxy', BARE_PROXY, [String(port), prefix, upstream], context.pinning.enabled ? context.pinning.proxyCpu : null);
      try {
        // Any HTTP answer means it listens; the runner checks the answer itself.
        await waitForHttp(`http://127.0.0.1:${port}${prefix}/`, { proc, ready: () => true });
      } catch (err) {
        await proc.stop();
        throw err;
      }
      return {
        port: port!,
        path: `${prefix}/items`,
        ...(proc.pid === undefined ? {} : { pid: proc.pid }),
        problems: () => proc.problems(),
        stop: () => proc.stop(),
      };
    },
  };
}
