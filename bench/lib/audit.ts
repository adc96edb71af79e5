// SPDX-License-Identifier: Apache-2.0
// Counting each provisioner's Kubernetes API requests at the API server, from its audit log.
//
// Every contender runs as its own ServiceAccount in the namespace IDENTITY_NS; the audit policy
// logs exactly that group at Metadata level (one line per request, two for a watch) and nothing
// else, so the driver, the controller-manager and the floor cost the audit backend nothing.
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Kube, KubeError } from './kube.js';

const IDENTITY_NS = 'bench-identities';

/**
 * Writes the audit policy into `dir`; returns the kube-apiserver flags that enable it. With
 * `admin`, requests of the admin identity (kube-controller-manager and the driver) are logged too,
 * which costs the API server more work: only for tracing runs.
 */
export function auditArgs(dir: string, opts: { admin?: boolean } = {}): { args: string[]; logPath: string } {
  const policy = join(dir, 'audit-policy.yaml');
  const logPath = join(dir, 'audit.log');
  writeFileSync(
    policy,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: ["RequestReceived"]',
      'rules:',
      '  - level: Metadata',
      `    userGroups: ["system:serviceaccounts:${IDENTITY_NS}"]`,
      ...(opts.admin ? ['  - level: Metadata', '    users: ["admin"]'] : []),
      '  - level: None',
      '',
    ].join('\n'),
  );
  return { args: [`--audit-policy-file=${policy}`, `--audit-log-path=${logPath}`, '--audit-log-maxsize=0'], logPath };
}

export interface AuditRecord {
  id: string;
  user: string;
  userAgent: string;
  namespace: string;
  name: string;
  verb: string;
  /** resource[/subresource] */
  resource: string;
  /** requestReceivedTimestamp, epoch ms */
  at: number;
  code: number;
}

/** Reads the audit log incrementally; one record per request (a watch's two stages are merged). */
export class AuditLog {
  #offset = 0;
  #rest = '';
  readonly records = new Map<string, AuditRecord>();
  constructor(readonly path: string) {}

  /** Reads what was appended since the last call. */
  poll(): void {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return;
    }
    if (size <= this.#offset) return;
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(size - this.#offset);
      readSync(fd, buf, 0, buf.length, this.#offset);
      this.#offset = size;
      const text = this.#rest + buf.toString('utf8');
      const lines = text.split('\n');
      this.#rest = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        const e = JSON.parse(line) as {
          auditID: string;
          verb: string;
          user?: { username?: string };
          userAgent?: string;
          objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
          requestReceivedTimestamp: string;
          responseStatus?: { code?: number };
        };
        const prev = this.records.get(e.auditID);
        const resource = (e.objectRef?.resource ?? 'nonresource') + (e.objectRef?.subresource ? `/${e.objectRef.subresource}` : '');
        this.records.set(e.auditID, {
          id: e.auditID,
          user: e.user?.username ?? '',
          userAgent: e.userAgent ?? '',
          namespace: e.objectRef?.namespace ?? '',
          name: e.objectRef?.name ?? '',
          verb: e.verb,
          resource,
          at: Date.parse(e.requestReceivedTimestamp),
          code: e.responseStatus?.code ?? prev?.code ?? 0,
        });
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Requests of `user` received in [from, to), counted by "verb resource". */
  count(user: string, from = 0, to = Infinity): Record<string, number> {
    this.poll();
    const out: Record<string, number> = {};
    for (const r of this.records.values()) {
      if (r.user !== user || r.at < from || r.at >= to) continue;
      const k = `${r.verb} ${r.resource}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }
}

export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
export const READ_VERBS = new Set(['get', 'list']);

export function sumVerbs(counts: Record<string, number>, verbs: Set<string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(counts)) if (verbs.has(k.split(' ')[0]!)) n += v;
  return n;
}

/** The identity namespace and a binding of its ServiceAccounts to cluster-admin (once per plane). */
export async function setupIdentities(kube: Kube): Promise<void> {
  await ignoreExists(kube.req('POST', '/api/v1/namespaces', { metadata: { name: IDENTITY_NS } }));
  await ignoreExists(
    kube.req('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name: 'bench-identities-admin' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${IDENTITY_NS}` }],
    }),
  );
}

/** A ServiceAccount for one contender and a kubeconfig with its token; returns the audit user name. */
export async function identity(kube: Kube, server: string, name: string, dir: string): Promise<{ user: string; kubeconfig: string }> {
  await ignoreExists(kube.req('POST', `/api/v1/namespaces/${IDENTITY_NS}/serviceaccounts`, { metadata: { name } }));
  const tr = await kube.req<{ status: { token: string } }>('POST', `/api/v1/namespaces/${IDENTITY_NS}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { audiences: [], expirationSeconds: 86_400 },
  });
  const kubeconfig = join(dir, `kubeconfig-${name}`);
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: plane',
      `  cluster: {server: "${server}", insecure-skip-tls-verify: true}`,
      'users:',
      `- name: ${name}`,
      `  user: {token: "${tr.status.token}"}`,
      'contexts:',
      `- name: ${name}`,
      `  context: {cluster: plane, user: ${name}}`,
      `current-context: ${name}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return { user: `system:serviceaccount:${IDENTITY_NS}:${name}`, kubeconfig };
}

async function ignoreExists(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof KubeError && err.status === 409)) throw err;
  }
}
