// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner audit` against the Datera simulator: seeded orphans (one in a sub-tenant),
// a PV whose app instance is missing, drift, foreign app instances; the dry run, --yes,
// --older-than, and the re-check that keeps a delete off anything no longer provably ours.
// The command line (help, flag problems, exit code 2) without any server.
import { expect } from 'chai';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { command } from '../../lib/admin/audit.js';
import { Audit, formatAge, hasFindings, type AuditReport, type ClusterView } from '../../lib/admin/audit-scan.js';
import { DateraClient } from '../../lib/datera/client.js';
import { nullLogger } from '../../lib/observability/logger.js';
import { parseTemplates } from '../../lib/provision/app-templates.js';
import { DateraConnections } from '../../lib/provision/credentials.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { CLUSTER_ID, useSimulator } from '../provision/harness.js';

const NOW = Date.parse('2026-06-10T12:00:00Z');
const DAYS_AGO_3 = new Date(NOW - 3 * 86_400_000).toISOString();
const HOURS_AGO_1 = new Date(NOW - 3_600_000).toISOString();
const DAY_MS = 86_400_000;

const TEMPLATES = parseTemplates('templates:\n  - name: t\n    replicas: 2\n    qos:\n      totalIopsMax: 1000\n');
if (!TEMPLATES.ok) throw new Error(TEMPLATES.errors.join('; '));

function body(name: string, size: number, replicas: number, qos?: Record<string, number>) {
  return { name, storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size, replica_count: replicas, ...(qos ? { performance_policy: qos } : {}) }] }] };
}

function md(pv: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'k8s-provisioner': PROVISIONER,
    'k8s-pv': pv,
    'k8s-claim-namespace': 'apps',
    'k8s-claim-name': `claim-${pv}`,
    'k8s-claim-uid': `uid-${pv}`,
    'k8s-storage-class': 'gold',
    'k8s-cluster-id': CLUSTER_ID,
    'k8s-created-at': DAYS_AGO_3,
    'k8s-reclaim-policy': 'Delete',
    ...extra,
  };
}

/** A PV of ours bound to claim apps/claim-<name> (uid uid-<name>) of class gold, `size` GiB. */
function pv(name: string, sizeGi: number): V1PersistentVolume {
  const v = newVolume(name, { className: 'gold' });
  v.spec!.capacity = { storage: `${sizeGi}Gi` };
  v.spec!.claimRef = { kind: 'PersistentVolumeClaim', namespace: 'apps', name: `claim-${name}`, uid: `uid-${name}` };
  return v;
}

function boundClaim(name: string): V1PersistentVolumeClaim {
  return newClaim(`claim-${name}`, { ns: 'apps', uid: `uid-${name}`, className: 'gold', volumeName: name });
}

describe('datera-provisioner audit', function () {
  this.timeout(20_000);

  describe('against the simulator', () => {
    const fx = useSimulator();
    let connections: DateraConnections;
    let teamA: DateraClient;
    let volumes: V1PersistentVolume[];
    let claims: V1PersistentVolumeClaim[];
    let classes: V1StorageClass[];
    /** What the fresh reads of the re-check see (defaults: the listed objects). */
    let liveVolumes: Map<string, V1PersistentVolume>;

    beforeEach(async () => {
      connections = new DateraConnections({
        defaults: { endpoint: fx.url, username: 'admin', password: 'secret_pw1', tenant: '/root', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 2000, deadlineMs: 1500, connections: 8 },
        defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
        readSecret: async () => undefined,
        makeClient: (c) => new DateraClient({ ...c, requestTimeoutMs: 2000, deadlineMs: 1500, retryBaseMs: 10, retryMaxMs: 50 }),
        logger: nullLogger(),
      });
      teamA = new DateraClient({ endpoint: fx.url, username: 'admin', password: 'secret_pw1', tenant: '/root/team-a' });
      const d = fx.direct;
      const seed = async (client: DateraClient, b: ReturnType<typeof body>, m?: Record<string, string>) => {
        await client.createAppInstance(b);
        if (m) await client.putMetadata(b.name, m);
      };
      // Bound PVs: one as the templates make it today, one drifted, one whose app instance is gone.
      await seed(d, body('pvc-ok', 2, 2, { total_iops_max: 1000 }), md('pvc-ok'));
      await seed(d, body('pvc-drift', 1, 3), md('pvc-drift'));
      // No PV: orphans (old, young, retained, one in a sub-tenant), one whose claim is still being provisioned.
      await seed(d, body('pvc-old', 1, 2), md('pvc-old'));
      await seed(d, body('pvc-young', 1, 2), md('pvc-young', { 'k8s-created-at': HOURS_AGO_1 }));
      await seed(d, body('pvc-kept', 1, 2), md('pvc-kept', { 'k8s-reclaim-policy': 'Retain' }));
      await seed(d, body('pvc-pending', 1, 2), md('pvc-pending'));
      await seed(teamA, body('pvc-sub', 1, 2), md('pvc-sub'));
      // Not ours: another cluster, another provisioner, untagged, ours from before cluster ids.
      await seed(d, body('pvc-other-cluster', 1, 2), md('pvc-other-cluster', { 'k8s-cluster-id': 'another-cluster' }));
      await seed(d, body('pvc-other-prov', 1, 2), md('pvc-other-prov', { 'k8s-provisioner': 'example.com/other' }));
      await seed(d, body('manual', 1, 2));
      await seed(teamA, body('pvc-legacy', 1, 2), (({ 'k8s-cluster-id': _c, ...r }) => r)(md('pvc-legacy')));
      volumes = [pv('pvc-ok', 2), pv('pvc-drift', 2), pv('pvc-missing', 1)];
      claims = [boundClaim('pvc-ok'), boundClaim('pvc-drift'), boundClaim('pvc-missing'), newClaim('claim-pvc-pending', { ns: 'apps', uid: 'uid-pvc-pending', className: 'gold' })];
      classes = [newStorageClass('gold', { parameters: { template: 't' } })];
      liveVolumes = new Map(volumes.map((v) => [v.metadata!.name!, v]));
    });
    afterEach(async () => {
      await connections.close();
      await teamA.close();
    });

    const cluster = (): ClusterView => ({
      provisionerNames: new Set([PROVISIONER]),
      clusterId: CLUSTER_ID,
      namespace: 'datera-system',
      defaultFsType: 'xfs',
      volumes,
      claims,
      classes,
      templates: TEMPLATES.set,
      readVolume: async (name) => liveVolumes.get(name),
      readClaim: async (ns, name) => claims.find((c) => c.metadata!.namespace === ns && c.metadata!.name === name),
    });
    const audit = (progress?: (l: string) => void, pageSize?: number) =>
      new Audit(cluster(), { connections, now: () => NOW, ...(progress ? { progress } : {}), ...(pageSize ? { pageSize } : {}) });
    const names = (tenant = '/root') => fx.sim.appInstances(tenant).map((a) => a.name).sort();

    it('reports the orphans of this cluster with their age (one in a sub-tenant), not the one whose claim exists', async () => {
      const r = await audit().run();
      expect(r.orphans.map((o) => [o.tenant, o.appInstance, o.ageSeconds, o.retained, o.claim])).to.deep.equal([
        ['/root', 'pvc-kept', 3 * 86_400, true, 'apps/claim-pvc-kept'],
        ['/root', 'pvc-old', 3 * 86_400, false, 'apps/claim-pvc-old'],
        ['/root', 'pvc-young', 3600, false, 'apps/claim-pvc-young'],
        ['/root/team-a', 'pvc-sub', 3 * 86_400, false, 'apps/claim-pvc-sub'],
      ]);
      expect(r.tenants.map((t) => [t.tenant, t.appInstances])).to.deep.equal([['/root', 9], ['/root/team-a', 2]]);
    });

    it('reports the PV whose app instance is missing, and only that one', async () => {
      const r = await audit().run();
      expect(r.missing).to.deep.equal([{ pv: 'pvc-missing', appInstance: 'pvc-missing', endpoint: fx.url, tenant: '/root', claim: 'apps/claim-pvc-missing', phase: 'Bound', reclaimPolicy: 'Delete' }]);
    });

    it('reports size, replica and QoS drift from what the template makes today, nothing for the PV that matches', async () => {
      const r = await audit().run();
      expect(r.drift.map((d) => [d.pv, d.field, d.actual, d.expected])).to.deep.equal([
        ['pvc-drift', 'qos.total_iops_max', 'unlimited', '1000'],
        ['pvc-drift', 'replicas', '3', '2'],
        ['pvc-drift', 'size', '1Gi', '2Gi'],
      ]);
    });

    it('a claim annotation the template allows is part of what "today" means: a tightened QoS limit is no drift', async () => {
      const t = parseTemplates('templates:\n  - name: t\n    replicas: 2\n    overridable: [qos.totalIopsMax]\n    qos:\n      totalIopsMax: 1000\n');
      if (!t.ok) throw new Error(t.errors.join('; '));
      await fx.direct.setPerformancePolicy('pvc-ok', 'storage-1', 'volume-1', { total_iops_max: 500 });
      const c = claims.find((x) => x.metadata!.name === 'claim-pvc-ok')!;
      const before = (await new Audit({ ...cluster(), templates: t.set }, { connections, now: () => NOW }).run()).drift.filter((d) => d.pv === 'pvc-ok');
      c.metadata!.annotations = { ...c.metadata!.annotations, 'datera.io/qos.totalIopsMax': '500' };
      const after = (await new Audit({ ...cluster(), templates: t.set }, { connections, now: () => NOW }).run()).drift.filter((d) => d.pv === 'pvc-ok');
      expect(before.map((d) => [d.field, d.actual, d.expected])).to.deep.equal([['qos.total_iops_max', '500', '1000']]);
      expect(after).to.deep.equal([]);
    });

    it('with an unusable template ConfigMap drift is not checked and the audit says it is incomplete', async () => {
      const r = await new Audit({ ...cluster(), templatesProblem: 'ConfigMap datera-system/datera-templates has no key "templates.yaml"' }, { connections, now: () => NOW }).run();
      expect(r.drift).to.deep.equal([]);
      expect(r.errors).to.deep.equal([{ where: 'AppTemplates', message: 'ConfigMap datera-system/datera-templates has no key "templates.yaml"; drift not checked' }]);
      expect(r.orphans.length, 'the rest is still audited').to.equal(4);
    });

    it('lists app instances of other clusters and provisioners, untagged ones and ones without a cluster id as foreign', async () => {
      const r = await audit().run();
      expect(r.foreign.map((f) => [f.tenant, f.appInstance, f.why])).to.deep.equal([
        ['/root', 'manual', 'untagged'],
        ['/root', 'pvc-other-cluster', 'another cluster'],
        ['/root', 'pvc-other-prov', 'another provisioner'],
        ['/root/team-a', 'pvc-legacy', 'no cluster id recorded'],
      ]);
      expect(r.errors).to.deep.equal([]);
      expect(hasFindings(r)).to.equal(true);
    });

    it('a cluster that matches Datera has no findings: only foreign app instances left', async () => {
      for (const n of ['pvc-drift', 'pvc-old', 'pvc-young', 'pvc-kept', 'pvc-pending']) {
        await fx.direct.setAdminState(n, 'offline', true);
        await fx.direct.deleteAppInstance(n, true);
      }
      await teamA.setAdminState('pvc-sub', 'offline', true);
      await teamA.deleteAppInstance('pvc-sub', true);
      volumes = [pv('pvc-ok', 2)];
      const r = await audit().run();
      expect([r.orphans.length, r.missing.length, r.drift.length, r.foreign.length, r.errors.length]).to.deep.equal([0, 0, 0, 4, 0]);
      expect(hasFindings(r)).to.equal(false);
    });

    it('reports progress per page of app instances', async () => {
      const lines: string[] = [];
      await audit((l) => lines.push(l), 4).run();
      expect(lines.filter((l) => l.startsWith('tenant /root at'))).to.deep.equal([
        `tenant /root at ${fx.url}: 4 of 9 app instances listed`,
        `tenant /root at ${fx.url}: 8 of 9 app instances listed`,
        `tenant /root at ${fx.url}: 9 app instances listed`,
      ]);
    });

    it('reports progress every 100 metadata reads', async () => {
      const lines: string[] = [];
      const many = Array.from({ length: 250 }, (_, i) => ({ name: `manual-${i}` }));
      const r = await new Audit({ ...cluster(), volumes: [] }, {
        connections: {
          forProvision: async (o) => {
            const c = await connections.forProvision(o);
            const fake = {
              listAppInstances: async (q: { offset?: number }) => ({ data: c.tenant === '/root' && (q.offset ?? 0) === 0 ? many : [], total: 250, offset: q.offset ?? 0, limit: 300 }),
              getMetadata: async () => ({}),
            };
            return { ...c, client: Object.assign(Object.create(c.client) as DateraClient, fake) };
          },
          forVolume: (p) => connections.forVolume(p),
        },
        progress: (l) => lines.push(l),
        pageSize: 300,
        now: () => NOW,
      }).run();
      expect(r.foreign).to.have.length(250);
      expect(lines.filter((l) => l.includes('metadata'))).to.deep.equal([
        'tenant /root: metadata of 100 of 250 app instances read',
        'tenant /root: metadata of 200 of 250 app instances read',
      ]);
    });

    it('follows pages to the short one when the server sends no total_count, and stops on a server that ignores offset', async () => {
      const wrapped = (change: (p: Awaited<ReturnType<DateraClient['listAppInstances']>>, offset: number) => typeof p) => ({
        forProvision: async (o: Parameters<DateraConnections['forProvision']>[0]) => {
          const c = await connections.forProvision(o);
          const list = c.client.listAppInstances.bind(c.client);
          return { ...c, client: Object.assign(Object.create(c.client) as DateraClient, { listAppInstances: async (q: { limit?: number; offset?: number }) => change(await list(q), q.offset ?? 0) }) };
        },
        forVolume: (p: V1PersistentVolume) => connections.forVolume(p),
      });
      const noTotal = await new Audit(cluster(), { connections: wrapped((p, offset) => ({ ...p, total: offset + p.data.length })), now: () => NOW, pageSize: 3 }).run();
      expect(noTotal.tenants.find((t) => t.tenant === '/root')!.appInstances).to.equal(9);
      const calls: number[] = [];
      const ignoresOffset = await new Audit(cluster(), {
        connections: wrapped((p, offset) => {
          calls.push(offset);
          return { ...p, data: fx.sim.appInstances('/root').slice(0, 3).map((ai) => ({ ...ai, storage_instances: [] }) as unknown as (typeof p.data)[number]) };
        }),
        now: () => NOW,
        pageSize: 3,
      }).run();
      expect(ignoresOffset.tenants.find((t) => t.tenant === '/root')!.appInstances).to.equal(3);
      expect(calls, 'offsets asked of /root, then of /root/team-a: the second page of each repeats the first').to.deep.equal([0, 3, 0, 3]);
    });

    it('--delete-orphans without --yes deletes nothing and says which orphans it would delete (old enough, not retained)', async () => {
      const a = audit();
      const r = await a.run();
      const before = [names(), names('/root/team-a')];
      await a.deleteOrphans(r, { olderThanMs: DAY_MS, yes: false });
      expect(r.deletions!.map((d) => [d.appInstance, d.action])).to.deep.equal([
        ['pvc-kept', 'skipped'],
        ['pvc-old', 'would-delete'],
        ['pvc-young', 'skipped'],
        ['pvc-sub', 'would-delete'],
      ]);
      expect([names(), names('/root/team-a')]).to.deep.equal(before);
    });

    it('--yes deletes the orphans older than --older-than, in every tenant, and nothing else: young, retained, foreign and pending stay', async () => {
      const a = audit();
      const r = await a.run();
      await a.deleteOrphans(r, { olderThanMs: DAY_MS, yes: true });
      expect(r.deletions!.filter((d) => d.action === 'deleted').map((d) => d.appInstance)).to.deep.equal(['pvc-old', 'pvc-sub']);
      expect(names()).to.deep.equal(['manual', 'pvc-drift', 'pvc-kept', 'pvc-ok', 'pvc-other-cluster', 'pvc-other-prov', 'pvc-pending', 'pvc-young']);
      expect(names('/root/team-a')).to.deep.equal(['pvc-legacy']);
      expect(fx.sim.calls().filter((c) => c.method === 'DELETE').map((c) => c.path)).to.have.length(2);
      expect(hasFindings(r), 'the young and the retained orphans are still findings').to.equal(true);
      expect(r.errors).to.deep.equal([]);
    });

    it('--older-than is respected: with 2h the one-hour-old orphan stays, with 30m it goes', async () => {
      let a = audit();
      let r = await a.run();
      await a.deleteOrphans(r, { olderThanMs: 2 * 3_600_000, yes: true });
      expect(names()).to.include('pvc-young');
      a = audit();
      r = await a.run();
      await a.deleteOrphans(r, { olderThanMs: 30 * 60_000, yes: true });
      expect(names()).to.not.include('pvc-young');
    });

    it('the delete re-checks: an orphan re-tagged with another cluster since the listing is refused and stays, even with --yes', async () => {
      const a = audit();
      const r = await a.run();
      await fx.direct.putMetadata('pvc-old', { 'k8s-cluster-id': 'another-cluster' });
      await teamA.putMetadata('pvc-sub', { 'k8s-provisioner': 'example.com/other' });
      await a.deleteOrphans(r, { olderThanMs: DAY_MS, yes: true });
      const got = Object.fromEntries(r.deletions!.map((d) => [d.appInstance, `${d.action}: ${d.reason}`]));
      expect(got['pvc-old']).to.equal('refused: no longer an orphan of this cluster (not ours: cluster)');
      expect(got['pvc-sub']).to.equal('refused: no longer an orphan of this cluster (not ours: provisioner)');
      expect(names()).to.include('pvc-old');
      expect(names('/root/team-a')).to.include('pvc-sub');
    });

    it('the delete re-checks: an orphan whose PV or claim appeared since the listing is refused and stays', async () => {
      const a = audit();
      const r = await a.run();
      liveVolumes.set('pvc-old', pv('pvc-old', 1));
      claims.push(newClaim('claim-pvc-sub', { ns: 'apps', uid: 'uid-pvc-sub', className: 'gold' }));
      await a.deleteOrphans(r, { olderThanMs: DAY_MS, yes: true });
      const got = Object.fromEntries(r.deletions!.map((d) => [d.appInstance, `${d.action}: ${d.reason}`]));
      expect(got['pvc-old']).to.equal('refused: no longer an orphan of this cluster (has-volume)');
      expect(got['pvc-sub']).to.equal('refused: no longer an orphan of this cluster (has-claim)');
      expect(names()).to.include('pvc-old');
      expect(names('/root/team-a')).to.include('pvc-sub');
    });

    it('audits only the credentials\' tenant and its sub-tenants: with credentials for /root/team-a, /root is not looked at', async () => {
      const scoped = new DateraConnections({
        defaults: { endpoint: fx.url, username: 'admin', password: 'secret_pw1', tenant: '/root/team-a', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 2000, deadlineMs: 1500, connections: 8 },
        defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
        readSecret: async () => undefined,
        makeClient: (c) => new DateraClient({ ...c, requestTimeoutMs: 2000, deadlineMs: 1500, retryBaseMs: 10, retryMaxMs: 50 }),
        logger: nullLogger(),
      });
      const sub = new DateraClient({ endpoint: fx.url, username: 'admin', password: 'secret_pw1', tenant: '/root/team-a/dev' });
      try {
        await sub.createAppInstance(body('pvc-dev', 1, 2));
        await sub.putMetadata('pvc-dev', md('pvc-dev'));
        const r = await new Audit({ ...cluster(), volumes: [], claims: [] }, { connections: scoped, now: () => NOW }).run();
        expect(r.tenants.map((t) => t.tenant)).to.deep.equal(['/root/team-a', '/root/team-a/dev']);
        expect(r.orphans.map((o) => `${o.tenant} ${o.appInstance}`)).to.deep.equal(['/root/team-a pvc-sub', '/root/team-a/dev pvc-dev']);
      } finally {
        await sub.close();
        await scoped.close();
      }
    });

    it('a tenant that cannot be listed is an error (the audit is incomplete), the other tenants are still audited', async () => {
      const failing = new Audit(
        cluster(),
        {
          connections: {
            forProvision: async (o) => {
              const c = await connections.forProvision(o);
              if (c.tenant !== '/root/team-a') return c;
              return { ...c, client: Object.assign(Object.create(c.client) as DateraClient, { listAppInstances: () => Promise.reject(new Error('boom')) }) };
            },
            forVolume: (p) => connections.forVolume(p),
          },
          now: () => NOW,
        },
      );
      const r: AuditReport = await failing.run();
      expect(r.errors.map((e) => e.message)).to.deep.equal(['listing app instances failed: boom']);
      expect(r.orphans.map((o) => o.appInstance)).to.deep.equal(['pvc-kept', 'pvc-old', 'pvc-young']);
    });
  });

  describe('formatAge', () => {
    for (const [s, want] of [[42, '42s'], [600, '10m'], [3 * 3600 + 120, '3h2m'], [3 * 86_400 + 7200, '3d2h']] as const) {
      it(`${s} s -> ${want}`, () => expect(formatAge(s)).to.equal(want));
    }
  });

  describe('command line', () => {
    const io = () => {
      const out = { stdout: '', stderr: '' };
      const x: Parameters<typeof command.run>[1] = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), env: {} };
      return { out, io: x };
    };

    it('--help prints the usage with examples and exit codes, exit 0', async () => {
      const { out, io: x } = io();
      expect(await command.run(['--help'], x)).to.equal(0);
      expect(out.stdout).to.match(/^Usage: datera-provisioner audit/);
      expect(out.stdout).to.include('--delete-orphans --older-than 24h --yes');
      expect(out.stdout).to.match(/Exit codes: 0 clean; 1 findings/);
    });

    it('bad flags: every problem at once, naming the flag, exit 2, nothing on stdout', async () => {
      const { out, io: x } = io();
      const code = await command.run(['-o', 'yaml', '--older-than', '30s', '--yes', '--datera-endpoint', 'h:7717', '--bogus'], x);
      expect(code).to.equal(2);
      expect(out.stdout).to.equal('');
      for (const p of [
        '--output "yaml" is not one of table, json',
        '--older-than must be at least 1m',
        '--older-than applies only with --delete-orphans',
        '--yes applies only with --delete-orphans',
        'unknown flag --bogus',
        'Datera username is not set',
      ])
        expect(out.stderr).to.include(p);
    });

    it('--delete-orphans needs --older-than; --older-than takes days', async () => {
      const a = io();
      expect(await command.run(['--delete-orphans'], a.io)).to.equal(2);
      expect(a.out.stderr).to.include('--delete-orphans needs --older-than');
      const b = io();
      expect(await command.run(['--delete-orphans', '--older-than=7d', '--older-than-x'], b.io)).to.equal(2);
      expect(b.out.stderr).to.not.include('--older-than:');
      const c = io();
      expect(await command.run(['--delete-orphans', '--older-than', 'soon'], c.io)).to.equal(2);
      expect(c.out.stderr).to.include('--older-than: expected a duration such as 24h, 90m or 7d, got "soon"');
    });
  });
});
