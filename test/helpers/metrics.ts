import type { Gateway } from '../../src/gateway.js';

/**
 * Reads a metric the way an operator would query it: by name and label values, summed over the
 * labels not given (for a histogram: its observation count). Uses prom-client's own JSON export of
 * the gateway's registry instead of parsing the text format.
 */
export async function metricValue(gateway: Gateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const all = await gateway.metrics.registry.getMetricsAsJSON();
  const metric = all.find((m) => m.name === name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const isHistogram = String(metric.type) === 'histogram';
  let sum = 0;
  for (const v of metric.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
    if (isHistogram && v.metricName !== `${name}_count`) continue;
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}
