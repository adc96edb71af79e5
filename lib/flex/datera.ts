// SPDX-License-Identifier: Apache-2.0
// How the driver reaches Datera: which credentials a call-out uses (the mount Secret, else the
// node settings file), the client factory tests replace, and Failure messages for API errors.
import { DateraClient } from '../datera/client.js';
import { resolveEndpoint } from '../datera/endpoint.js';
import { DateraError } from '../datera/errors.js';
import type { DateraApi } from '../datera/types.js';
import type { NodeSettings } from './config.js';
import type { Logger } from './log.js';
import { FlexError } from './reply.js';

export interface DateraConnection {
  /** As configured: a URL or `host:port` (the client's resolveEndpoint decides http/https). */
  endpoint: string;
  username: string;
  password: string;
  tenant: string;
  ldapServer?: string;
  caBundle?: string;
  insecureSkipTlsVerify?: boolean;
  /** Where the credentials came from, for Failure messages ("Secret", "/etc/datera/flex.json"). */
  source: string;
}

export type ClientFactory = (conn: DateraConnection, logger: Logger) => DateraApi;

/** Per request and per call-out budgets: kubelet retries a failed call-out anyway. */
const REQUEST_TIMEOUT_MS = 15_000;
const DEADLINE_MS = 45_000;

export const defaultClientFactory: ClientFactory = (conn, logger) =>
  new DateraClient({
    endpoint: conn.endpoint,
    username: conn.username,
    password: conn.password,
    tenant: conn.tenant,
    ldapServer: conn.ldapServer,
    caBundle: conn.caBundle,
    insecureSkipTlsVerify: conn.insecureSkipTlsVerify,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    deadlineMs: DEADLINE_MS,
    logger,
  });

/** Keys of the `datera/iscsi` Secret as kubelet hands them to `mount` (already decoded). */
export interface SecretCredentials {
  username?: string;
  password?: string;
  server?: string;
  tenant?: string;
  ldapServer?: string;
}

/**
 * An endpoint as the Datera client will connect to it: scheme, host, port and path prefix
 * (`10.0.0.5:7718`, `https://10.0.0.5:7718/` and `https://10.0.0.5:7718/v2.2` are one key).
 */
export function endpointKey(endpoint: string, what = 'Datera server'): string {
  try {
    const r = resolveEndpoint(endpoint);
    return `${r.origin}${r.basePath}`;
  } catch (err) {
    throw new FlexError(`${what} "${endpoint.trim()}" is not a valid URL or host:port: ${(err as Error).message}`, { cause: err });
  }
}

/** The endpoints the node credentials may be sent to: `server` plus `allowedServers`, as keys. */
export function allowedEndpoints(settings: NodeSettings, settingsFile: string): Set<string> {
  return new Set([settings.server, ...(settings.allowedServers ?? [])].map((e) => endpointKey(e, `${settingsFile}: server`)));
}

/** Whether node credentials may go to `endpoint` (an invalid endpoint is never allowed). */
export function nodeServerAllowed(settings: NodeSettings, settingsFile: string, endpoint: string): boolean {
  let key: string;
  try {
    key = endpointKey(endpoint);
  } catch {
    return false;
  }
  return allowedEndpoints(settings, settingsFile).has(key);
}

/**
 * Credentials for one call-out. The mount Secret wins when it carries a username and password;
 * otherwise the node settings file (required then), and then only for an endpoint on its
 * allow-list (`server`, `allowedServers`): any other is a FlexError naming it, nothing sent. The address is the Secret's `server`, the
 * PV's `backstoreServer`, then the node's. The tenant is the PV's (where the provisioner created
 * the app instance), then the Secret's, then the node's, then `/root`.
 */
export function resolveConnection(args: {
  secret?: SecretCredentials;
  settings: NodeSettings | undefined;
  settingsFile: string;
  server?: string;
  tenant?: string;
}): DateraConnection {
  const { secret, settings } = args;
  const fromSecret = Boolean(secret?.username && secret.password);
  if (!fromSecret && !settings) {
    throw new FlexError(
      `no Datera credentials: the call-out carried no Secret and ${args.settingsFile} does not exist (is the datera-flex DaemonSet running on this node?)`,
    );
  }
  const server = (fromSecret ? secret?.server : undefined) || args.server || settings?.server;
  if (!server?.trim()) throw new FlexError('no Datera server address: set "server" in the Secret or backstoreServer in the PV options');
  // The node credentials go only where the admin said (node settings), never where a PV or a
  // pod's inline volume points: refuse before anything is sent.
  if (!fromSecret && !nodeServerAllowed(settings!, args.settingsFile, server)) {
    throw new FlexError(
      `refusing to send the node's Datera credentials to ${server.trim()}: it is not the server or one of the allowedServers in ${args.settingsFile}`,
    );
  }
  return {
    endpoint: server.trim(),
    username: fromSecret ? secret!.username! : settings!.username,
    password: fromSecret ? secret!.password! : settings!.password,
    tenant: args.tenant || (fromSecret ? secret?.tenant : undefined) || settings?.tenant || '/root',
    ldapServer: (fromSecret ? secret?.ldapServer : settings?.ldapServer) || undefined,
    caBundle: settings?.caBundle,
    insecureSkipTlsVerify: settings?.insecureSkipTlsVerify,
    source: fromSecret ? 'the volume Secret' : args.settingsFile,
  };
}

/** A Failure message for a Datera error, naming the endpoint and where the credentials came from. */
export function explainDateraError(err: unknown, conn: DateraConnection, action: string): FlexError {
  if (err instanceof FlexError) return err;
  if (!(err instanceof DateraError)) return new FlexError(`${action}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  switch (err.code) {
    case 'DATERA_AUTH':
      return new FlexError(
        `Datera at ${conn.endpoint} rejected the login of user "${conn.username}" (credentials from ${conn.source}): ${err.message}`,
        { cause: err },
      );
    case 'DATERA_CONNECTION':
    case 'DATERA_TIMEOUT':
      return new FlexError(`cannot reach Datera at ${conn.endpoint} while trying to ${action}: ${err.message}`, { cause: err });
    default:
      return new FlexError(`Datera refused to ${action}: ${err.message}`, { cause: err });
  }
}
