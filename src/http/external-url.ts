import type { IncomingHttpHeaders } from 'node:http';

/**
 * The address clients reach the node at, which every URL the node writes (RetrieveURL,
 * BulkDataURI, Content-Location, Location, the viewer's configuration) starts with.
 *
 * By default it is the address of the request itself: http or https as the connection is, and the
 * Host header. Behind a reverse proxy that address is the internal one; with HTTP_TRUST_PROXY on,
 * the proxy's headers name the external one instead: `Forwarded` (RFC 7239: proto=, host= of the
 * first element, the one the proxy nearest the client added), else `X-Forwarded-Proto` and
 * `X-Forwarded-Host` (first of a list), and `X-Forwarded-Prefix` (a path the proxy mounts the node
 * under; RFC 7239 has no parameter for it). Off by default: a client talking to the node directly
 * could otherwise make it write links to any host. Values that are not a plain scheme, host or
 * path are ignored (the request's own address is used for that part).
 */

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;
const PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function firstOfList(v: string | undefined): string | undefined {
  const first = v?.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

/** `proto` and `host` of the first element of a Forwarded header (RFC 7239 §4). */
export function parseForwarded(value: string | undefined): { proto?: string; host?: string } {
  const out: { proto?: string; host?: string } = {};
  if (!value) return out;
  // The first element ends at the first comma outside a quoted string.
  const m = /^(?:[^,"]|"(?:[^"\\]|\\.)*")*/.exec(value);
  for (const pair of (m?.[0] ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const name = pair.slice(0, eq).trim().toLowerCase();
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    if (name === 'proto' || name === 'host') out[name] ??= v;
  }
  return out;
}

/**
 * The external base URL of a request (`base`: `https://pacs.example.org/radiant`, scheme, host and
 * prefix, no trailing slash) and its path part (`prefix`: `/radiant`, or '' at the root; what a
 * relative Location starts with). `direct` is what the connection says (Koa's protocol and
 * Host header); `trustProxy` turns the proxy headers on.
 */
export function externalAddress(
  headers: IncomingHttpHeaders,
  direct: { protocol: string; host: string },
  trustProxy: boolean,
): { base: string; prefix: string } {
  let { protocol, host } = direct;
  let prefix = '';
  if (trustProxy) {
    const fwd = parseForwarded(header(headers, 'forwarded'));
    const proto = (fwd.proto ?? firstOfList(header(headers, 'x-forwarded-proto')))?.toLowerCase();
    const fhost = fwd.host ?? firstOfList(header(headers, 'x-forwarded-host'));
    const fprefix = firstOfList(header(headers, 'x-forwarded-prefix'))?.replace(/\/+$/, '');
    if (proto === 'http' || proto === 'https') protocol = proto;
    if (fhost && HOST.test(fhost)) host = fhost;
    if (fprefix && PREFIX.test(fprefix)) prefix = fprefix;
  }
  return { base: `${protocol}://${host}${prefix}`, prefix };
}
