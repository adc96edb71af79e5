// SPDX-License-Identifier: Apache-2.0
// Table specs of the QoS decisions for existing volumes (qos-updates.ts) and the AppTemplate key
// applyToExisting: which volumes change, to which limits, what is refused or reported.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { PerformancePolicy } from '../../lib/datera/types.js';
import { parseTemplates, type TemplateSet } from '../../lib/provision/app-templates.js';
import {
  TokenBucket,
  claimAnnotationChanges,
  describePolicyChange,
  desiredQos,
  targetPolicy,
  templateEdits,
  volumeSizeGiB,
  type QosTarget,
  type Scope,
} from '../../lib/provision/qos-updates.js';
import { decodePolicy, encodePolicy } from '../../lib/provision/volume.js';
import { newClaim, newStorageClass, newVolume } from '../support/builders.js';

function templateSet(yaml: string): TemplateSet {
  const r = parseTemplates(yaml);
  if (!r.ok) throw new Error(`test templates do not parse:\n${r.errors.join('\n')}`);
  return r.set;
}

const TEMPLATES = templateSet(`
templates:
  - name: fast
    replicas: 2
    qos: { totalIopsMax: 20000, iopsPerGiB: 50, readBandwidthMax: 1000 }
    maxSize: 5Gi
    overridable: [qos.totalIopsMax, qos.readBandwidthMax, replicas]
    applyToExisting: [qos]
  - name: plain
    qos: { totalIopsMax: 800 }
  - name: remote
    dateraTemplate: basic_small
`);

/** A bound PV of `size` GiB in class `className`, bound to claim "a" (uid-a). */
function boundVolume(o: { size?: number; className?: string; template?: string; provisionedBy?: string; phase?: string } = {}): V1PersistentVolume {
  const pv = newVolume('pvc-uid-a', { className: o.className ?? 'gold', ...(o.provisionedBy ? { provisionedBy: o.provisionedBy } : {}), phase: o.phase ?? 'Bound' });
  pv.spec!.capacity = { storage: `${o.size ?? 10}Gi` };
  pv.spec!.flexVolume!.options!['size'] = String(o.size ?? 10);
  pv.spec!.claimRef = { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'a', uid: 'uid-a' };
  if (o.template) pv.metadata!.annotations!['datera.io/template'] = o.template;
  return pv;
}

function boundClaim(annotations: Record<string, string> = {}, uid = 'uid-a'): V1PersistentVolumeClaim {
  return newClaim('a', { className: 'gold', volumeName: 'pvc-uid-a', annotations, uid });
}

describe('provision/qos-updates: the policy an existing volume should have', () => {
  type Row = {
    name: string;
    pv?: V1PersistentVolume;
    ours?: boolean;
    cls?: V1StorageClass | null;
    claim?: V1PersistentVolumeClaim | null;
    want: { policy: PerformancePolicy } | { skip: RegExp } | { refused: string; allowed: RegExp };
  };
  const gold = (parameters: Record<string, string>) => newStorageClass('gold', { parameters });
  const rows: Row[] = [
    { name: 'per-GiB limits use the PV\'s own size: 10 GiB x 50 = 500 IOPS', want: { policy: { total_iops_max: 500, read_bandwidth_max: 1000 } } },
    { name: 'a volume larger than the template\'s maxSize is computed, not refused (size bounds are for new claims)', pv: boundVolume({ size: 1000 }), want: { policy: { total_iops_max: 20000, read_bandwidth_max: 1000 } } },
    { name: 'the size comes from flexVolume.options.size when the capacity does not read', pv: (() => { const pv = boundVolume({ size: 4 }); pv.spec!.capacity = {}; return pv; })(), want: { policy: { total_iops_max: 200, read_bandwidth_max: 1000 } } },
    { name: 'a tighter claim QoS annotation is applied', claim: boundClaim({ 'datera.io/qos.readBandwidthMax': '400' }), want: { policy: { total_iops_max: 500, read_bandwidth_max: 400 } } },
    {
      name: 'a looser claim QoS annotation is refused, naming the annotation and the allowed range',
      claim: boundClaim({ 'datera.io/qos.readBandwidthMax': '5000' }),
      want: { refused: 'datera.io/qos.readBandwidthMax', allowed: /allowed 1\.\.1000/ },
    },
    {
      name: 'a QoS annotation the template does not let claims override is refused',
      claim: boundClaim({ 'datera.io/qos.writeIopsMax': '10' }),
      want: { refused: 'datera.io/qos.writeIopsMax', allowed: /may not override qos\.writeIopsMax/ },
    },
    { name: 'other annotations (even ones provisioning would refuse) do not enter the QoS computation', claim: boundClaim({ 'datera.io/ipPool': 'p2', 'datera.io/replicas': '9' }), want: { policy: { total_iops_max: 500, read_bandwidth_max: 1000 } } },
    { name: 'class QoS parameters are layered as at provisioning', cls: gold({ template: 'plain', read_iops_max: '70' }), want: { policy: { total_iops_max: 800, read_iops_max: 70 } } },
    { name: 'no QoS anywhere: the empty policy (unlimited)', cls: gold({}), want: { policy: {} } },
    { name: 'a PV of another provisioner is skipped', ours: false, want: { skip: /not made by this provisioner/ } },
    { name: 'an unbound (released) PV is skipped', pv: boundVolume({ phase: 'Released' }), want: { skip: /not bound/ } },
    { name: 'a PV whose claim in the cache has another uid is skipped', claim: boundClaim({}, 'uid-other'), want: { skip: /not bound/ } },
    { name: 'a PV whose class is gone is skipped', cls: null, want: { skip: /StorageClass "gold" does not exist/ } },
    { name: 'a Datera-side template (class datera_template) is skipped: it decides QoS', cls: gold({ datera_template: 'basic_small' }), want: { skip: /Datera-side template "basic_small"/ } },
    { name: 'a Datera-side template (AppTemplate dateraTemplate) is skipped', cls: gold({ template: 'remote' }), want: { skip: /Datera-side template "basic_small"/ } },
    { name: 'a PV made from another template than its class names now is skipped', pv: boundVolume({ template: 'plain' }), want: { skip: /made from template "plain", but StorageClass "gold" now names "fast"/ } },
    { name: 'a class naming an undefined template is skipped with the provisioning message', cls: gold({ template: 'gone' }), want: { skip: /names AppTemplate "gone", which is not defined/ } },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got: QosTarget = desiredQos({
        pv: r.pv ?? boundVolume(),
        ours: r.ours ?? true,
        storageClass: r.cls === null ? undefined : (r.cls ?? gold({ template: 'fast' })),
        claim: r.claim === null ? undefined : (r.claim ?? boundClaim()),
        templates: TEMPLATES,
        defaultFsType: 'xfs',
      });
      if ('policy' in r.want) {
        if (got.kind !== 'policy') expect.fail(JSON.stringify(got));
        expect(got.policy).to.deep.equal(r.want.policy);
      } else if ('skip' in r.want) {
        if (got.kind !== 'skip') expect.fail(JSON.stringify(got));
        expect(got.reason).to.match(r.want.skip);
      } else {
        if (got.kind !== 'refused') expect.fail(JSON.stringify(got));
        expect(got.annotation).to.equal(r.want.refused);
        expect(got.message).to.include(`claim annotation "${r.want.refused}"`).and.match(r.want.allowed);
      }
    });
  }

  it('volumeSizeGiB rounds the capacity up to whole GiB and is undefined without a size', () => {
    const pv = boundVolume();
    pv.spec!.capacity = { storage: '1536Mi' };
    expect(volumeSizeGiB(pv)).to.equal(2);
    pv.spec!.capacity = {};
    delete pv.spec!.flexVolume!.options!['size'];
    expect(volumeSizeGiB(pv)).to.equal(undefined);
  });
});

describe('provision/qos-updates: the limits that change', () => {
  const current: PerformancePolicy = { total_iops_max: 1000, read_iops_max: 300 };
  const desired: PerformancePolicy = { total_iops_max: 500, write_iops_max: 50 };
  const rows: { name: string; scope: Scope; want: PerformancePolicy }[] = [
    { name: 'all (template opted in): exactly the desired limits', scope: 'all', want: { total_iops_max: 500, write_iops_max: 50 } },
    { name: 'one limit (a claim annotation): that limit follows, the others are kept', scope: new Set(['total_iops_max'] as const), want: { total_iops_max: 500, read_iops_max: 300 } },
    { name: 'a limit the desired policy leaves unlimited is removed', scope: new Set(['read_iops_max'] as const), want: { total_iops_max: 1000 } },
    { name: 'no limits: nothing changes', scope: new Set(), want: { total_iops_max: 1000, read_iops_max: 300 } },
  ];
  for (const r of rows) it(r.name, () => expect(targetPolicy(current, desired, r.scope)).to.deep.equal(r.want));

  it('describes a change in template spelling, unlimited for absent limits, unchanged limits left out', () => {
    expect(describePolicyChange({ total_iops_max: 1000, read_iops_max: 5 }, { total_iops_max: 500, read_iops_max: 5, write_bandwidth_max: 10 })).to.equal(
      'totalIopsMax 1000 -> 500, writeBandwidthMax unlimited -> 10',
    );
  });

  it('the PV annotation round-trips and anything else reads as unknown', () => {
    expect(encodePolicy({ read_iops_max: 3, total_iops_max: 0, total_bandwidth_max: 7 })).to.equal('{"read_iops_max":3,"total_bandwidth_max":7}');
    expect(decodePolicy('{"read_iops_max":3,"total_bandwidth_max":7}')).to.deep.equal({ read_iops_max: 3, total_bandwidth_max: 7 });
    expect(decodePolicy('{}')).to.deep.equal({});
    for (const bad of [undefined, 'x', '[]', '{"total_iops_max":-1}', '{"other":1}', '{"total_bandwidth_max":7,"read_iops_max":3}']) expect(decodePolicy(bad), String(bad)).to.equal(undefined);
  });
});

describe('provision/qos-updates: claim annotation edits', () => {
  const rows: { name: string; now: Record<string, string>; before: Record<string, string>; qos: string[]; scope: string[]; others: string[] }[] = [
    { name: 'a changed QoS annotation decides its limit', now: { 'datera.io/qos.totalIopsMax': '400' }, before: { 'datera.io/qos.totalIopsMax': '500' }, qos: ['datera.io/qos.totalIopsMax'], scope: ['total_iops_max'], others: [] },
    { name: 'a removed per-GiB annotation decides the total limit', now: {}, before: { 'datera.io/qos.bandwidthPerGiB': '5' }, qos: ['datera.io/qos.bandwidthPerGiB'], scope: ['total_bandwidth_max'], others: [] },
    { name: 'replicas, ipPool and placement annotations are other settings', now: { 'datera.io/replicas': '2', 'datera.io/placement.mode': 'hybrid' }, before: { 'datera.io/ipPool': 'p' }, qos: [], scope: [], others: ['datera.io/ipPool', 'datera.io/placement.mode', 'datera.io/replicas'] },
    { name: 'unchanged annotations and annotations of others are not edits', now: { 'datera.io/replicas': '2', 'example.com/x': '1', 'datera.io/app-note': 'y' }, before: { 'datera.io/replicas': '2', 'example.com/x': '2' }, qos: [], scope: [], others: [] },
    { name: 'an unknown qos.* annotation is a QoS edit with no limit (its refusal names it)', now: { 'datera.io/qos.turbo': '1' }, before: {}, qos: ['datera.io/qos.turbo'], scope: [], others: [] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const c = claimAnnotationChanges(r.now, r.before);
      expect(c.qos).to.deep.equal(r.qos);
      expect([...c.scope]).to.deep.equal(r.scope);
      expect(c.others.map((o) => o.annotation)).to.deep.equal(r.others);
    });
  }
});

describe('provision/qos-updates: template edits', () => {
  const base = `
templates:
  - name: t
    replicas: 2
    qos: { totalIopsMax: 1000 }
    overridable: [replicas]
`;
  const edit = (from: string, to: string) => templateEdits(templateSet(from), templateSet(to));
  const rows: { name: string; to: string; want: { follows: boolean; qosChanged: boolean; others: string[] }[] }[] = [
    { name: 'a QoS edit without opt-in', to: base.replace('1000', '500'), want: [{ follows: false, qosChanged: true, others: [] }] },
    { name: 'a QoS edit with opt-in', to: base.replace('1000', '500') + '    applyToExisting: [qos]\n', want: [{ follows: true, qosChanged: true, others: [] }] },
    { name: 'only the opt-in added counts as a QoS change (the volumes now follow)', to: base + '    applyToExisting: [qos]\n', want: [{ follows: true, qosChanged: true, others: [] }] },
    { name: 'replicas and placement edits are other settings', to: base.replace('replicas: 2', 'replicas: 3\n    placement: { mode: all_flash }'), want: [{ follows: false, qosChanged: false, others: ['replicas', 'placement'] }] },
    { name: 'a new QoS override ceiling is a QoS change', to: base.replace('[replicas]', '[replicas, qos.totalIopsMax]'), want: [{ follows: false, qosChanged: true, others: [] }] },
    { name: 'a description or a non-QoS overridable edit is no edit of volumes', to: base.replace('[replicas]', '[replicas, fsType]') + '    description: new words\n', want: [] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      expect(edit(base, r.to).map(({ follows, qosChanged, others }) => ({ follows, qosChanged, others }))).to.deep.equal(r.want);
    });
  }

  it('a template new to the set is "added"; a removed one is no edit', () => {
    const got = edit(base, 'templates:\n  - name: u\n');
    expect(got).to.deep.equal([{ name: 'u', added: true, follows: false, qosChanged: true, others: [] }]);
  });
});

describe('provision/app-templates: applyToExisting', () => {
  const one = (body: string) => parseTemplates(`templates:\n  - name: t\n${body}`);
  it('[qos] is accepted; absent means none', () => {
    const r = one('    applyToExisting: [qos]\n');
    if (!r.ok) expect.fail(r.errors.join('\n'));
    expect(r.set.templates.get('t')!.applyToExisting).to.deep.equal(['qos']);
    const none = one('    replicas: 1\n');
    if (!none.ok) expect.fail(none.errors.join('\n'));
    expect(none.set.templates.get('t')!.applyToExisting).to.equal(undefined);
  });
  const refused: { value: string; error: string }[] = [
    { value: '[replicas]', error: 'template "t": applyToExisting entry "replicas" is not allowed: replicas applies to new volumes only (an existing volume keeps the value it was made with); allowed: qos' },
    { value: '[qos, placement]', error: 'template "t": applyToExisting entry "placement" is not allowed: placement applies to new volumes only (an existing volume keeps the value it was made with); allowed: qos' },
    { value: '[ipPool]', error: 'template "t": applyToExisting entry "ipPool" is not allowed: ipPool applies to new volumes only (an existing volume keeps the value it was made with); allowed: qos' },
    { value: '[size]', error: 'template "t": applyToExisting entry "size" is not allowed: size applies to new volumes only (an existing volume keeps the value it was made with); allowed: qos' },
    { value: '[snapshotPolicies]', error: 'template "t": applyToExisting entry "snapshotPolicies" is not allowed: snapshotPolicies applies to new volumes only (an existing volume keeps the value it was made with); allowed: qos' },
    { value: '[qos.totalIopsMax]', error: 'template "t": applyToExisting entry "qos.totalIopsMax" is not allowed: the QoS limits of existing volumes follow the template together; write qos; allowed: qos' },
    { value: '[Qos]', error: 'template "t": applyToExisting entry "Qos" is not a setting (did you mean qos?); allowed: qos' },
    { value: 'qos', error: 'template "t": applyToExisting must be a list of settings that existing volumes follow (allowed: qos), got "qos"' },
  ];
  for (const r of refused) {
    it(`refuses applyToExisting: ${r.value}, naming the key and what is allowed`, () => {
      const got = one(`    applyToExisting: ${r.value}\n`);
      if (got.ok) expect.fail('accepted');
      expect(got.errors).to.deep.equal([r.error]);
    });
  }
  it('refuses applyToExisting: [qos] next to dateraTemplate (that template decides QoS)', () => {
    const got = one('    dateraTemplate: basic_small\n    applyToExisting: [qos]\n');
    if (got.ok) expect.fail('accepted');
    expect(got.errors).to.deep.equal(['template "t": applyToExisting: [qos] has no effect with dateraTemplate "basic_small", which decides the QoS of its volumes; remove it']);
  });
});

describe('provision/qos-updates: TokenBucket', () => {
  it('serves the burst at once, then reserves tokens in order at the given rate', () => {
    let t = 0;
    const b = new TokenBucket(2, () => t);
    expect([b.reserve(), b.reserve()]).to.deep.equal([0, 0]);
    expect([b.reserve(), b.reserve()]).to.deep.equal([500, 1000]);
    t = 1000; // two tokens refilled, both already reserved
    expect(b.reserve()).to.equal(500);
  });
});

describe('config/templates.yaml: applyToExisting in the shipped templates', () => {
  it('"bulk" opts its existing volumes into QoS edits; the others change new volumes only', () => {
    const set = templateSet(readFileSync(new URL('../../config/templates.yaml', import.meta.url), 'utf8'));
    const opted = [...set.templates.values()].filter((t) => t.applyToExisting?.includes('qos')).map((t) => t.name);
    expect(opted).to.deep.equal(['bulk']);
  });
});
