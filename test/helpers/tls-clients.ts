// Real TLS servers and clients for the tests of src/tls: a line-echo server that greets each
// connection (so a client knows the handshake was accepted by the server, which under TLS 1.3 is
// only certain once the server has spoken), and a client that waits for that greeting.

import { readFileSync } from 'node:fs';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { connect, createServer, type ConnectionOptions, type PeerCertificate, type Server, type TLSSocket, type TlsOptions } from 'node:tls';
import { verifiedClientIdentity } from '../../src/tls/client-identity.js';

export interface RunningServer<S> {
  readonly server: S;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0; close() also destroys the connections still open. */
export async function listen<S extends NetServer>(server: S): Promise<RunningServer<S>> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TLS server that writes `hello <client CN or ->\n` on each connection and then echoes lines.
 */
export function greetingServer(options: TlsOptions): Promise<RunningServer<Server>> {
  const server = createServer(options, (socket) => {
    socket.on('error', () => {});
    socket.write(`hello ${verifiedClientIdentity(socket)?.commonName ?? '-'}\n`);
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  return listen(server);
}

export interface Greeted {
  readonly socket: TLSSocket;
  readonly greeting: string;
  readonly peer: PeerCertificate;
  readonly protocol: string | null;
  readonly alpn: string | false | null;
}

/** Connects to 127.0.0.1:port and resolves once the server's greeting line arrived. */
export function greet(port: number, options: ConnectionOptions = {}): Promise<Greeted> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    let buffered = '';
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => reject(new Error('closed before the greeting')));
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      socket.removeAllListeners('data');
      socket.removeListener('error', fail);
      socket.on('error', () => {});
      resolve({
        socket,
        greeting: buffered.slice(0, nl),
        peer: socket.getPeerCertificate(),
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
      });
    });
  });
}

/** Connects and resolves when the client's side of the handshake is done (nothing is read). */
export function handshake(port: number, options: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => resolve(socket));
    socket.on('error', reject);
  });
}

/**
 * How a client with a certificate the server does not trust sees the refusal: Node verifies the
 * client certificate after the handshake and destroys the socket, without a TLS alert. Under
 * TLS 1.3 the client has finished its handshake by then and sees the connection close; under
 * TLS 1.2 it may still be waiting for the server's Finished and sees a reset.
 */
export function isClosedByServer(err: Error & { code?: string }): boolean {
  return err.message === 'closed before the greeting' || err.code === 'ECONNRESET';
}

/** The error a connection attempt ended with; fails the test when it succeeded. */
export async function refusal(attempt: Promise<Greeted>): Promise<Error & { code?: string }> {
  const outcome = await attempt.then(
    (ok) => {
      ok.socket.destroy();
      return null;
    },
    (err: unknown) => err as Error & { code?: string },
  );
  if (outcome === null) throw new Error('the connection was accepted');
  return outcome;
}

/** Writes one line on an open greeted connection and resolves with the echoed line. */
export function echo(socket: TLSSocket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      socket.removeListener('data', onData);
      resolve(buffered.slice(0, nl));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed')));
    socket.write(`${line}\n`);
  });
}

/** The CN of a certificate the client saw. */
export function cnOf(peer: PeerCertificate): string | undefined {
  const cn = peer.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

export function pem(file: string): Buffer {
  return readFileSync(file);
}
