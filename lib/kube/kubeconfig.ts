// SPDX-License-Identifier: Apache-2.0
// Where the provisioner finds its cluster: an explicit kubeconfig, $KUBECONFIG, the in-cluster
// service account, or ~/.kube/config, in that order; never client-node's silent fallback to
// http://localhost:8080. client-node's KubeConfig keeps the auth (exec plugins, token files,
// client certificates, OIDC); lib/kube/rest.ts turns it into requests.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const SA_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Thrown when no usable Kubernetes configuration can be found. */
export class KubeConfigError extends Error {
  readonly code = 'KUBE_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

/**
 * Loads the cluster configuration. Order: `opts.kubeconfig` > `opts.inCluster` > `$KUBECONFIG`
 * > in-cluster (when KUBERNETES_SERVICE_HOST is set) > `~/.kube/config`. Unlike
 * `KubeConfig.loadFromDefault()` this never falls back to http://localhost:8080: with nothing
 * found it throws a `KubeConfigError` saying what was tried.
 *
 * @param env injectable environment (tests)
 */
export function loadKubeConfig(
  opts: { kubeconfig?: string | undefined; inCluster?: boolean | undefined } = {},
  env: NodeJS.ProcessEnv = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  const tried: string[] = [];
  const fromFile = (file: string, what: string): KubeConfig => {
    if (!existsSync(file)) throw new KubeConfigError(`kubeconfig ${what} ${file} does not exist`);
    try {
      kc.loadFromFile(file);
    } catch (err) {
      throw new KubeConfigError(`cannot load kubeconfig ${file}: ${(err as Error).message}`);
    }
    return checked(kc, file);
  };
  const fromCluster = (): KubeConfig => {
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new KubeConfigError('in-cluster configuration requested but KUBERNETES_SERVICE_HOST/PORT are not set');
    }
    kc.loadFromOptions(inClusterOptions(env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT));
    return checked(kc, 'in-cluster service account');
  };

  if (opts.kubeconfig) return fromFile(opts.kubeconfig, 'file');
  if (opts.inCluster) return fromCluster();
  const fromEnv = (env.KUBECONFIG ?? '').split(process.platform === 'win32' ? ';' : ':').filter(Boolean);
  if (fromEnv.length > 0) {
    for (const f of fromEnv) if (!existsSync(f)) throw new KubeConfigError(`KUBECONFIG names ${f}, which does not exist`);
    try {
      kc.loadFromFile(fromEnv[0]!);
      for (const f of fromEnv.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(f);
        // kubectl semantics: the first file that sets current-context wins.
        kc.mergeConfig(more, Boolean(kc.currentContext));
      }
    } catch (err) {
      throw new KubeConfigError(`cannot load KUBECONFIG=${env.KUBECONFIG}: ${(err as Error).message}`);
    }
    return checked(kc, `KUBECONFIG=${env.KUBECONFIG}`);
  }
  tried.push('$KUBECONFIG (unset)');
  if (env.KUBERNETES_SERVICE_HOST) {
    if (!existsSync(SA_TOKEN_PATH)) {
      throw new KubeConfigError(
        `KUBERNETES_SERVICE_HOST is set but ${SA_TOKEN_PATH} is missing (automountServiceAccountToken disabled?)`,
      );
    }
    return fromCluster();
  }
  tried.push('in-cluster (KUBERNETES_SERVICE_HOST unset)');
  const home = env.HOME ?? env.USERPROFILE ?? safeHomedir();
  if (home) {
    const file = join(home, '.kube', 'config');
    if (existsSync(file)) return fromFile(file, 'file');
    tried.push(file);
  }
  throw new KubeConfigError(`no Kubernetes configuration found; tried ${tried.join(', ')}. Pass --kubeconfig or run in a pod`);
}

function safeHomedir(): string | undefined {
  try {
    return homedir();
  } catch {
    return undefined;
  }
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The in-cluster configuration client-go builds (rest.InClusterConfig): the service's address
 * from the given environment (never from process.env behind the caller's back), the mounted CA,
 * and the projected token re-read from its file as the kubelet rotates it.
 */
function inClusterOptions(host: string, port: string): Parameters<KubeConfig['loadFromOptions']>[0] {
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(SA_DIR, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    clusters: [{ name: 'in-cluster', server, caFile: join(SA_DIR, 'ca.crt'), skipTLSVerify: false }],
    users: [{ name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: SA_TOKEN_PATH } } }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster', ...(namespace ? { namespace } : {}) }],
    currentContext: 'in-cluster',
  };
}

function checked(kc: KubeConfig, source: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server) {
    throw new KubeConfigError(`kubeconfig from ${source} has no current context with a cluster server`);
  }
  return kc;
}
