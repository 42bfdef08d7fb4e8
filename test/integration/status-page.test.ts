import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type Page, chromium } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, writeRoutes } from '../helpers/gateway.js';
import { endpointView, useTestbed } from '../helpers/testbed.js';
import { echo, type UpstreamBehaviour } from '../helpers/upstream.js';
import { sleep, until } from '../helpers/wait.js';

// The status page (GET / on the admin listener) in a real headless Chromium against a real
// gateway: it renders, shows an ejection within 2 s, loads nothing from elsewhere, and computes
// rates and p99 in the browser. The screenshot it takes is kept in test-artifacts/.

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

/** CHROMIUM_PATH, else `chromium` or `chromium-browser` on PATH, else Debian's location. */
function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return '/usr/bin/chromium';
}

// Slow enough that p99 cannot come from the gateway alone: it must reflect the upstream's delay.
const UPSTREAM_DELAY_MS = 20;
const slowEcho: UpstreamBehaviour = (req, res, body) => {
  setTimeout(() => echo(req, res, body), UPSTREAM_DELAY_MS);
};
const failing: UpstreamBehaviour = (_req, res) => {
  res.writeHead(500, { 'content-type': 'text/plain' });
  res.end('broken');
};

function routesOver(urls: readonly string[]): Record<string, unknown> {
  return {
    upstreams: {
      pool: {
        targets: urls.map((url) => ({ url })),
        // Round-robin without retries: a failing endpoint's 500s reach clients, so error rates show.
        balancer: 'round-robin',
        retries: { attempts: 0 },
        outlierDetection: { consecutive5xx: 2, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
      },
    },
    routes: [
      { name: 'api', prefix: '/api', upstream: 'pool' },
      { name: 'web', prefix: '/web', upstream: 'pool' },
    ],
  };
}

async function get(url: string): Promise<number> {
  const res = await request(url);
  await res.body.dump();
  return res.statusCode;
}

/** Requests to both routes, one after the other, until stopped. */
function steadyTraffic(gw: RunningGateway): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await get(`${gw.url}/${i % 2 === 0 ? 'api' : 'web'}/item/${i}`);
      await sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

interface PageWatch {
  readonly page: Page;
  /** Every URL the page asked for. */
  readonly requests: string[];
  /** Uncaught exceptions and console errors (CSP violations are console errors). */
  readonly errors: string[];
}

describe('status page in headless Chromium', () => {
  const bed = useTestbed();
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  async function open(gw: RunningGateway): Promise<PageWatch> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
    const res = await page.goto(`${gw.adminUrl}/`);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('body[data-updated]', { timeout: 5_000 });
    return { page, requests, errors };
  }

  const text = async (page: Page, selector: string): Promise<string> => (await page.textContent(selector))?.trim() ?? '';

  it('renders version, routes and pools, shows an ejection within 2 s, then rates, errors and p99', async () => {
    const ups = await bed.upstreams(2, slowEcho);
    const [good, bad] = ups;
    const gw = await bed.gateway(routesOver(ups.map((u) => u.url)));
    const version = gw.gateway.holder.current!.version;
    const { page, requests, errors } = await open(gw);
    try {
      expect(await text(page, '[data-field="version"]')).toBe(version);
      expect(await page.getAttribute('[data-field="last-reload"]', 'data-result')).toBe('success');
      expect(await text(page, '[data-field="last-reload"]')).toContain(version);
      expect(await text(page, '[data-route="api"] [data-field="match"]')).toContain('/api');
      expect(await text(page, '[data-route="web"] [data-field="match"]')).toContain('/web');
      expect(await text(page, '[data-route="api"] [data-field="upstream"]')).toBe('pool');
      for (const u of ups) expect(await page.getAttribute(`[data-pool="pool"] [data-endpoint="${u.address}"]`, 'data-state')).toBe('healthy');

      // Failures until /upstreams reports the ejection; the page must follow within 2 s of that.
      bad.behaviour = failing;
      let i = 0;
      await until('the ejection in /upstreams', async () => {
        await get(`${gw.url}/${i++ % 2 === 0 ? 'api' : 'web'}/x`);
        return (await endpointView(gw, bad.address)).state === 'ejected';
      }, 10_000);
      const ejectedAt = performance.now();
      const traffic = steadyTraffic(gw);
      try {
        const row = await page.waitForSelector(`[data-endpoint="${bad.address}"][data-state="ejected"]`, { timeout: 2_000 });
        const shownAfterMs = performance.now() - ejectedAt;
        expect(shownAfterMs).toBeLessThan(2_000);
        console.log(`status page: ejection shown ${Math.round(shownAfterMs)} ms after /upstreams reported it`);
        expect(await row.$eval('[data-field="reason"]', (e) => e.textContent)).toBe('consecutive_5xx');
        const secondsLeft = Number(await row.$eval('[data-field="time-left"]', (e) => e.getAttribute('data-seconds')));
        expect(secondsLeft).toBeGreaterThan(25);
        expect(secondsLeft).toBeLessThanOrEqual(30);
        expect(await row.$eval('[data-field="time-left"]', (e) => e.textContent)).toMatch(/^\d+ s left$/);
        expect(await row.$eval('[data-field="detail"]', (e) => e.textContent)).toBe('2 consecutive 500');
        expect(await page.getAttribute(`[data-endpoint="${good.address}"]`, 'data-state')).toBe('healthy');

        // Rates and p99 come from the difference between two polls, under steady traffic.
        await until('rates and p99 of both routes on the page', async () => {
          for (const route of ['api', 'web']) {
            if (!(Number(await text(page, `[data-route="${route}"] [data-field="rps"]`)) > 0)) return false;
            if (!(await text(page, `[data-route="${route}"] [data-field="p99"]`)).endsWith(' ms')) return false;
          }
          return true;
        }, 5_000);
        for (const route of ['api', 'web']) {
          const p99 = await text(page, `[data-route="${route}"] [data-field="p99"]`);
          const ms = Number(p99.replace(/^> /, '').replace(/ ms$/, ''));
          // The upstream's 20 ms delay puts it in the 10–25 ms bucket or above; the upper bound
          // leaves room for a slow request or two on a busy machine (p99 of ~30 is their maximum).
          expect(ms, `${route} p99 ${p99}`).toBeGreaterThanOrEqual(10);
          expect(ms, `${route} p99 ${p99}`).toBeLessThanOrEqual(250);
        }
        // The failures before the ejection are within the rate window: 100 % of the bad endpoint's
        // answers, and a share of its routes'.
        expect(await text(page, `[data-endpoint="${bad.address}"] [data-field="errors"]`)).toBe('100%');
        const routeErrors = await Promise.all(['api', 'web'].map((r) => text(page, `[data-route="${r}"] [data-field="errors"]`)));
        expect(routeErrors.some((e) => /^[\d.]+%$/.test(e) && parseFloat(e) > 0), routeErrors.join(', ')).toBe(true);
        expect(Number(await text(page, `[data-endpoint="${good.address}"] [data-field="rps"]`))).toBeGreaterThan(0);
      } finally {
        await traffic.stop();
      }

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });

      // A failed reload shows with its errors, as text: markup in a message is not markup on the page.
      await writeRoutes(gw.files, {
        upstreams: { pool: { targets: ups.map((u) => ({ url: u.url })) } },
        // An unknown field is named in the error message.
        routes: [{ name: 'api', prefix: '/api', upstream: 'pool', '<b id="injected">nope</b>': 1 }],
      });
      const reload = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
      await reload.body.dump();
      expect(reload.statusCode).toBe(422);
      await page.waitForSelector('[data-field="last-reload"][data-result="failure"]', { timeout: 2_000 });
      expect(await text(page, '[data-field="reload-errors"]')).toContain('<b id="injected">nope</b>');
      expect(await page.$('#injected')).toBeNull();
      expect(await text(page, '[data-field="version"]')).toBe(version);

      const origin = new URL(gw.adminUrl).origin;
      expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
      expect(requests.some((url) => new URL(url).pathname === '/status')).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('shows a disconnected banner when a poll fails', async () => {
    const [up] = await bed.upstreams(1);
    const gw = await bed.gateway(routesOver([up.url]));
    const { page } = await open(gw);
    try {
      expect(await page.isHidden('[data-testid="disconnected"]')).toBe(true);
      await gw.stop();
      const stoppedAt = performance.now();
      await page.waitForSelector('[data-testid="disconnected"]', { state: 'visible', timeout: 3_000 });
      expect(performance.now() - stoppedAt).toBeLessThan(3_000);
      expect(await text(page, '[data-testid="disconnected"]')).toMatch(/^Disconnected: /);
      expect(await page.getAttribute('body', 'data-connection')).toBe('lost');
      // What was last known stays on the page.
      expect(await page.getAttribute(`[data-endpoint="${up.address}"]`, 'data-state')).toBe('healthy');
    } finally {
      await page.close();
    }
  });
});
