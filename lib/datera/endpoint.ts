// SPDX-License-Identifier: Apache-2.0
// Where the Datera client connects: the endpoint forms an admin may write (URL or host:port, with
// the port deciding the scheme) resolved to an origin, and the keep-alive undici Agent used when
// no Dispatcher is injected. resolveEndpoint throws InvalidRequestError for anything else.
import { Agent } from 'undici';
import { InvalidRequestError } from './errors.js';

/** Max connections per endpoint of the default dispatcher. */
const DEFAULT_CONNECTIONS = 16;
/** Per request, headers and body together, in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** The client options the default dispatcher is built from (see DateraClientOptions). */
export interface DispatcherOptions {
  connections?: number | undefined;
  caBundle?: string | undefined;
  insecureSkipTlsVerify?: boolean | undefined;
  requestTimeoutMs?: number | undefined;
}

/** Resolved base URL: origin for the dispatcher plus an optional path prefix. */
export interface ResolvedEndpoint {
  origin: string;
  basePath: string;
  https: boolean;
}

/**
 * Accepts "https://h:7718", "http://h:7717/", or a bare "h:port" / "h" (http on 7717, https
 * otherwise, 7718 when no port). A trailing "/vX.Y" is dropped: the version comes from apiVersion.
 */
export function resolveEndpoint(endpoint: string): ResolvedEndpoint {
  const raw = endpoint.trim();
  if (raw === '') throw new InvalidRequestError('Datera endpoint is empty');
  let url: URL;
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
      url = new URL(raw);
    } else {
      const probe = new URL(`http://${raw}`);
      const scheme = probe.port === '7717' ? 'http' : 'https';
      url = new URL(`${scheme}://${raw}`);
      if (url.port === '' && scheme === 'https') url.port = '7718';
    }
  } catch (err) {
    throw new InvalidRequestError(`Datera endpoint is not a valid URL or host:port: ${raw}`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidRequestError(`Datera endpoint must be http or https: ${raw}`);
  }
  const basePath = url.pathname.replace(/\/+$/, '').replace(/\/v\d+(\.\d+)?$/, '');
  return { origin: url.origin, basePath, https: url.protocol === 'https:' };
}

/**
 * The dispatcher the client uses when none is injected: one keep-alive Agent, at most
 * `connections` sockets per endpoint, TLS verified unless explicitly disabled.
 */
export function createDefaultDispatcher(opts: DispatcherOptions, https: boolean): Agent {
  const timeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new Agent({
    connections: opts.connections ?? DEFAULT_CONNECTIONS,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
    // The client runs its own timer over headers and body; these are a backstop.
    headersTimeout: timeout,
    bodyTimeout: timeout,
    ...(https
      ? {
          connect: {
            rejectUnauthorized: opts.insecureSkipTlsVerify !== true,
            ...(opts.caBundle !== undefined ? { ca: opts.caBundle } : {}),
          },
        }
      : {}),
  });
}
