// SPDX-License-Identifier: Apache-2.0
// The "ideal provisioner" contender: everything a provisioner must do on the Kubernetes side and
// nothing else. It waits for the PV controller to mark a claim with
// `volume.kubernetes.io/storage-provisioner: <our name>` (as every external provisioner must
// before it acts), then writes the PV (pre-bound: claimRef with uid, the provisioner finalizer,
// `pv.kubernetes.io/provisioned-by`) and one ProvisioningSucceeded event; it makes no Datera
// calls. When a PV it provisioned is Released (reclaim policy Delete) it removes its finalizer
// (an update, as the Go library does) and deletes the PV. Plain REST over undici keep-alive (the
// driver's client), no rate limit, no work queue: the lower bound of what a provisioner costs.
//
// Run as its own process and ServiceAccount (bench/lib/contenders.ts), compiled to JavaScript with
// the run's copy of lib/ (or by hand: node --import tsx bench/lib/ideal.ts ...):
//   node <snapshot>/dist/bench-lib/ideal.js --kubeconfig FILE --provisioner NAME --namespace NS
// Prints "ideal provisioner running" once its claim and PV watches are synced.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Kube, KubeError, Mirror, retrying, type KubeObject } from './kube.js';
import { PV_FINALIZER, PROVISIONED_BY, preBoundVolume } from './objects.js';

export const ANN_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';

/** Server and bearer token from a kubeconfig written by bench/lib/audit.ts identity(). */
export function readKubeconfig(path: string): { server: string; token: string } {
  const text = readFileSync(path, 'utf8');
  const server = /server:\s*"?([^",}\s]+)"?/.exec(text)?.[1];
  const token = /token:\s*"?([^",}\s]+)"?/.exec(text)?.[1];
  if (!server || !token) throw new Error(`${path}: no server or token (expected the benchmark's ServiceAccount kubeconfig)`);
  return { server, token };
}

/** True when the PV controller has handed `claim` to provisioner `name` and it is not bound yet. */
export function claimIsOurs(claim: KubeObject, name: string): boolean {
  return claim.metadata.annotations?.[ANN_STORAGE_PROVISIONER] === name && !claim.spec?.volumeName && !claim.metadata.deletionTimestamp;
}

/** True when `pv` was provisioned by `name`, is Released, and its reclaim policy says delete. */
export function volumeToDelete(pv: KubeObject, name: string): boolean {
  return pv.metadata.annotations?.[PROVISIONED_BY] === name && pv.status?.phase === 'Released' && pv.spec?.persistentVolumeReclaimPolicy === 'Delete';
}

function event(claim: KubeObject, pvName: string, component: string): KubeObject {
  const now = new Date().toISOString();
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${claim.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: claim.metadata.namespace! },
    involvedObject: {
      kind: 'PersistentVolumeClaim',
      apiVersion: 'v1',
      namespace: claim.metadata.namespace!,
      name: claim.metadata.name,
      uid: claim.metadata.uid!,
      resourceVersion: claim.metadata.resourceVersion!,
    },
    reason: 'ProvisioningSucceeded',
    message: `Successfully provisioned volume ${pvName}`,
    type: 'Normal',
    source: { component },
    reportingComponent: component,
    reportingInstance: 'ideal',
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: { kubeconfig: { type: 'string' }, provisioner: { type: 'string' }, namespace: { type: 'string' }, 'backstore-server': { type: 'string', default: 'http://127.0.0.1:0' } },
  });
  if (!v.kubeconfig || !v.provisioner || !v.namespace) throw new Error('usage: ideal.ts --kubeconfig FILE --provisioner NAME --namespace NS');
  const name = v.provisioner;
  const ns = v.namespace;
  const { server, token } = readKubeconfig(v.kubeconfig);
  const kube = new Kube(server, token);
  const started = new Set<string>(); // claim uids whose PV this process has written (or is writing)
  const deleting = new Set<string>(); // PV names being released
  const failures = { pv: 0, event: 0, delete: 0 };

  const provision = async (c: KubeObject) => {
    const uid = c.metadata.uid!;
    const pv = preBoundVolume({
      claim: { namespace: ns, name: c.metadata.name, uid },
      className: c.spec?.storageClassName ?? '',
      provisioner: name,
      simUrl: v['backstore-server']!,
      finalizer: true,
    });
    try {
      await retrying(() => kube.req('POST', '/api/v1/persistentvolumes', pv));
    } catch (err) {
      // 409: a PV of this name exists (an earlier write of ours whose answer was lost): done.
      if (!(err instanceof KubeError && err.status === 409)) {
        failures.pv++;
        started.delete(uid); // let the next update of the claim try again
        return;
      }
    }
    try {
      await kube.req('POST', `/api/v1/namespaces/${ns}/events`, event(c, pv.metadata.name, name));
    } catch {
      failures.event++; // best effort, like every event recorder
    }
  };

  const release = async (pv: KubeObject) => {
    const path = `/api/v1/persistentvolumes/${pv.metadata.name}`;
    try {
      let cur = pv;
      for (let attempt = 0; (cur.metadata.finalizers ?? []).includes(PV_FINALIZER); attempt++) {
        const body = { ...cur, metadata: { ...cur.metadata, finalizers: cur.metadata.finalizers!.filter((f) => f !== PV_FINALIZER) } };
        try {
          cur = await retrying(() => kube.req<KubeObject>('PUT', path, body));
        } catch (err) {
          if (!(err instanceof KubeError && err.status === 409) || attempt >= 5) throw err;
          cur = await kube.req<KubeObject>('GET', path); // stale copy: read and try again
        }
      }
      await retrying(() => kube.req('DELETE', path));
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return; // already gone
      failures.delete++;
      deleting.delete(pv.metadata.name); // the next update of the PV tries again
    }
  };

  const claims = new Mirror(kube, `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    onUpsert: (c) => {
      if (!claimIsOurs(c, name) || started.has(c.metadata.uid!)) return;
      started.add(c.metadata.uid!);
      void provision(c);
    },
  });
  const volumes = new Mirror(kube, '/api/v1/persistentvolumes', {
    onUpsert: (pv) => {
      if (!volumeToDelete(pv, name) || deleting.has(pv.metadata.name)) return;
      deleting.add(pv.metadata.name);
      void release(pv);
    },
    onDelete: (pv) => deleting.delete(pv.metadata.name),
  });
  await Promise.all([claims.start(), volumes.start()]);
  process.stdout.write(`ideal provisioner running (provisioner ${name}, namespace ${ns})\n`);

  const stop = async () => {
    await Promise.all([claims.stop(), volumes.stop()]);
    await kube.close();
    process.stdout.write(`ideal provisioner stopped: ${started.size} claims handled, failures ${JSON.stringify(failures)}\n`);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

if (/ideal\.[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((err: unknown) => {
    process.stderr.write(`ideal provisioner failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
