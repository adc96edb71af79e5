// SPDX-License-Identifier: Apache-2.0
// How the provisioning loop names things in events and logs: the object an event is recorded on,
// and a one-line description of a failure. Neither ever carries a secret: Datera and Kubernetes
// errors are described from their codes, statuses and messages only.
import { DateraError } from '../datera/errors.js';
import { statusOf } from '../kube/errors.js';

/**
 * The object an event is recorded on: kind, name, and the namespace, uid and resourceVersion when
 * the object has them (Kubernetes files a claim's event in its namespace and links it by uid).
 */
export function subjectOf(obj: { metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } }, kind: string) {
  const m = obj.metadata ?? {};
  return {
    kind,
    apiVersion: 'v1',
    metadata: {
      name: m.name ?? '',
      ...(m.namespace ? { namespace: m.namespace } : {}),
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
    },
  };
}

/** A one-line, secret-free description for events and logs. */
export function describeFailure(err: unknown): string {
  if (err instanceof DateraError) {
    const detail = err.details.length ? ` (${err.details.join('; ')})` : '';
    return `Datera ${err.apiName ?? err.code}${err.status ? ` ${err.status}` : ''}: ${err.message}${detail}`;
  }
  const s = statusOf(err);
  if (s) return `Kubernetes API ${s.code}${s.reason ? ` ${s.reason}` : ''}: ${s.message ?? ''}`;
  return err instanceof Error ? err.message : String(err);
}
