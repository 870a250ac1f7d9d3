import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';

/**
 * An RFC 5424 syslog client for audit messages (IHE ATNA: RFC 5425 over TLS, RFC 5426 over UDP,
 * and plain TCP with RFC 6587 octet counting). One message per datagram over UDP; over TCP/TLS
 * `LEN SP MSG` on one kept connection, opened again after an error.
 */

/** authpriv (10) × 8 + notice (5): what ATNA audit records are sent as. */
const PRI = 85;
/** MSGID IHE ATNA gives DICOM/RFC 3881 audit messages. */
const MSG_ID = 'IHE+RFC-3881';
const BOM = '\uFEFF';

export interface SyslogTarget {
  protocol: 'udp' | 'tcp' | 'tls';
  host: string;
  port: number;
}

/** `udp://host:514`, `tcp://host:601`, `tls://host:6514` (default ports as registered). */
export function parseSyslogUrl(url: string): SyslogTarget {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, '');
  if (protocol !== 'udp' && protocol !== 'tcp' && protocol !== 'tls')
    throw new Error(`AUDIT_SYSLOG_URL: scheme must be udp, tcp or tls (got ${protocol})`);
  const port = u.port ? Number(u.port) : { udp: 514, tcp: 601, tls: 6514 }[protocol];
  if (!u.hostname) throw new Error('AUDIT_SYSLOG_URL: host missing');
  return { protocol, host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

/** An RFC 5424 message: header, no structured data, the XML (UTF-8, BOM-marked). */
export function syslogMessage(xml: string, at: Date, appName = 'radiant'): string {
  const host =
    os
      .hostname()
      .replace(/[^\x21-\x7e]/g, '')
      .slice(0, 255) || '-';
  return `<${PRI}>1 ${at.toISOString()} ${host} ${appName} ${process.pid} ${MSG_ID} - ${BOM}${xml}`;
}

export class SyslogSender {
  private socket: net.Socket | undefined;
  private udp: dgram.Socket | undefined;

  constructor(
    private readonly target: SyslogTarget,
    private readonly opts: { caFile?: string; timeoutMs?: number } = {},
  ) {}

  /** Sends the messages in order; rejects on the first one that cannot be written. */
  async send(messages: readonly string[]): Promise<void> {
    if (this.target.protocol === 'udp') {
      this.udp ??= dgram.createSocket(net.isIPv6(this.target.host) ? 'udp6' : 'udp4');
      for (const m of messages)
        await new Promise<void>((resolve, reject) =>
          this.udp!.send(Buffer.from(m, 'utf8'), this.target.port, this.target.host, (err) => (err ? reject(err) : resolve())),
        );
      return;
    }
    const socket = await this.connection();
    const frames = messages.map((m) => {
      const bytes = Buffer.from(m, 'utf8');
      return Buffer.concat([Buffer.from(`${bytes.length} `, 'ascii'), bytes]);
    });
    try {
      await new Promise<void>((resolve, reject) => socket.write(Buffer.concat(frames), (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.drop();
      throw err;
    }
  }

  close(): void {
    this.drop();
    this.udp?.close();
    this.udp = undefined;
  }

  private drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connection(): Promise<net.Socket> {
    const open = this.socket;
    if (open && !open.destroyed && open.writable) return Promise.resolve(open);
    const { host, port, protocol } = this.target;
    const timeoutMs = this.opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const ready = protocol === 'tls' ? 'secureConnect' : 'connect';
      const socket =
        protocol === 'tls'
          ? tls.connect({
              host,
              port,
              servername: net.isIP(host) ? undefined : host,
              ca: this.opts.caFile ? fs.readFileSync(this.opts.caFile) : undefined,
            })
          : net.connect({ host, port });
      const timer = setTimeout(
        () => socket.destroy(new Error(`syslog ${protocol}://${host}:${port}: no connection within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.once(ready, () => {
        clearTimeout(timer);
        this.socket = socket;
        // The collector says nothing back; anything it sends is ignored, an error or close drops the connection.
        socket.on('data', () => undefined);
        socket.on('error', () => this.socket === socket && this.drop());
        socket.on('close', () => this.socket === socket && (this.socket = undefined));
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
}
