// SPDX-License-Identifier: Apache-2.0
// A fresh control plane for one measured run: kube-controller-manager fast enough that binding is
// not the bottleneck, the audit log that attributes API requests to each contender, and the
// ServiceAccount identities the contenders run as.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startPlane, type Plane } from '../../spec/cluster/plane.js';
import { AuditLog, auditArgs, identity, setupIdentities } from './audit.js';
import { Kube } from './kube.js';

export const KCM_SETTINGS = { kcmQps: 1000, kcmBurst: 2000, pvSyncPeriod: '1s' };

export interface Cluster {
  plane: Plane;
  kube: Kube;
  audit: AuditLog;
  dir: string;
  /** A ServiceAccount kubeconfig whose requests the audit log records under `user`. */
  identity(name: string): Promise<{ user: string; kubeconfig: string }>;
  stop(): Promise<void>;
}

export async function startCluster(dir: string, extraApiserverArgs: string[] = [], opts: { auditAdmin?: boolean } = {}): Promise<Cluster> {
  mkdirSync(dir, { recursive: true });
  const audit = auditArgs(dir, { admin: opts.auditAdmin ?? false });
  const plane = await startPlane({ dir: join(dir, 'plane'), ...KCM_SETTINGS, apiserverArgs: [...audit.args, ...extraApiserverArgs] });
  const kube = new Kube(plane.server, plane.token);
  await setupIdentities(kube);
  return {
    plane,
    kube,
    audit: new AuditLog(audit.logPath),
    dir,
    identity: (name) => identity(kube, plane.server, name, dir),
    async stop() {
      await kube.close();
      await plane.stop();
    },
  };
}
