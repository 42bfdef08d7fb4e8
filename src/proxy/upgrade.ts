import { type IncomingHttpHeaders, type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

/**
 * Node hands every `Connection: upgrade` request to the server's 'upgrade' listener, with the raw
 * socket and no response object. Those that are not WebSocket upgrades on a `websocket: true`
 * route are served as ordinary HTTP/1.1 requests instead (the upgrade headers are hop-by-hop and
 * dropped, as nginx does), on a response bound to the socket and closed after it: the HTTP parser
 * has already let go of the connection, so it cannot be kept alive.
 */
export function responseForUpgradeSocket(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    res.detachSocket(socket as Socket);
    socket.end();
  });
  res.once('close', () => {
    if (!socket.destroyed && !res.writableFinished) socket.destroy();
  });
  return res;
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

const CRLF = '\r\n';

/** The 101 head sent to the client: the upstream's handshake headers plus our request id. */
function switchingProtocolsHead(headers: IncomingHttpHeaders, requestId: string): string {
  let head = `HTTP/1.1 101 Switching Protocols${CRLF}`;
  for (const name in headers) {
    if (name === 'x-request-id') continue;
    const value = headers[name];
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}${CRLF}`;
  }
  return `${head}x-request-id: ${requestId}${CRLF}${CRLF}`;
}

export interface TunnelEvents {
  /** The upstream agreed to switch protocols; the tunnel is open. */
  opened(): void;
  /** The upstream refused, failed or timed out before switching. */
  failed(err: Error): void;
  /** Either side closed an open tunnel. */
  closed(): void;
}

/**
 * Opens a WebSocket tunnel: the handshake goes to the upstream through its undici Pool (same
 * connect timeout and connection limit as HTTP), the upstream's 101 goes back to the client, then
 * bytes are piped both ways until either side closes. Runs once per WebSocket connection, so the
 * closures here are not on the request hot path.
 */
export function openTunnel(
  dispatcher: Dispatcher,
  options: { path: string; headers: string[]; headersTimeoutMs: number; requestId: string },
  client: Duplex,
  head: Buffer,
  events: TunnelEvents,
): void {
  dispatcher.upgrade({
    path: options.path,
    method: 'GET',
    headers: options.headers,
    protocol: 'websocket',
    headersTimeout: options.headersTimeoutMs,
  } as Dispatcher.UpgradeOptions).then(({ headers, socket: upstream }) => {
    if (client.destroyed) {
      upstream.destroy();
      events.failed(new Error('client closed during the handshake'));
      return;
    }
    let open = true;
    const close = (): void => {
      if (!open) return;
      open = false;
      client.destroy();
      upstream.destroy();
      events.closed();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.write(switchingProtocolsHead(headers, options.requestId));
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    events.opened();
  }, (err: Error) => events.failed(err));
}
