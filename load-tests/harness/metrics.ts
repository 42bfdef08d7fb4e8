// The gateway's own counters, read from its admin /metrics as Prometheus would scrape them: what a
// scenario checks after the load to know the gateway really did the work it was measured doing
// (verified the tokens, decided through Redis) rather than answering fast for another reason.
import { httpGet } from './processes.js';

/** The admin listener's /metrics text; throws when it does not answer 200. */
export async function fetchMetrics(adminPort: number): Promise<string> {
  const res = await httpGet(`http://127.0.0.1:${adminPort}/metrics`, {}, 5000);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return res.body.toString('utf8');
}

/**
 * Sum of the samples of `name` whose labels include every `labels` pair (and pass `extra`, given
 * the label text); null when no sample matched, so an absent metric (one registered only with a
 * `redis` block) is not read as 0. A histogram's count is the sample `<name>_count`.
 */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}, extra?: (labels: string) => boolean): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    let labelText: string;
    let value: string;
    if (line.startsWith(`${name}{`)) {
      const close = line.lastIndexOf('}');
      labelText = line.slice(name.length + 1, close);
      value = line.slice(close + 1);
    } else if (line.startsWith(`${name} `)) {
      labelText = '';
      value = line.slice(name.length);
    } else {
      continue;
    }
    if (!Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) continue;
    if (extra !== undefined && !extra(labelText)) continue;
    sum = (sum ?? 0) + Number(value.trim());
  }
  return sum;
}

/** metricValue, with no matching sample counted as 0. */
export function metricSum(text: string, name: string, labels: Readonly<Record<string, string>> = {}, extra?: (labels: string) => boolean): number {
  return metricValue(text, name, labels, extra) ?? 0;
}
