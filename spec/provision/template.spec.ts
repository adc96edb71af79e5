// SPDX-License-Identifier: Apache-2.0
// Table tests of the translation layer: AppTemplates YAML, quantities, StorageClass parameters,
// claim annotations  ->  Datera app-instance create request + VolumeParams.

import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { AppInstanceCreate, PerformancePolicy, SnapshotPolicy } from '../../lib/datera/types.js';
import {
  TEMPLATES_MAX_BYTES,
  TEMPLATES_MAX_NODES,
  parseTemplates,
  type AppTemplateSpec,
  type TemplateSet,
} from '../../lib/provision/app-templates.js';
import { ParameterError } from '../../lib/provision/parameters.js';
import { parseQuantity } from '../../lib/provision/quantity.js';
import { appInstanceRequest, type ClaimInput, type TranslateInput, type VolumeParams } from '../../lib/provision/request.js';

const Ki = 1024n;
const Mi = Ki * Ki;
const Gi = Mi * Ki;
const Ti = Gi * Ki;
const Pi = Ti * Ki;
const Ei = Pi * Ki;
const PV = 'pvc-0f3c5a8e-2b1d-4c7e-9a6f-1d2e3f4a5b6c';

// ---------------------------------------------------------------------------------------------
// builders

function templateSet(yaml: string): TemplateSet {
  const r = parseTemplates(yaml);
  if (!r.ok) throw new Error(`test templates do not parse:\n${r.errors.join('\n')}`);
  return r.set;
}

const TEMPLATES = templateSet(`
templates:
  - name: fast
    replicas: 2
    placement: { mode: all_flash, policy: all-flash }
    ipPool: pool-a
    tenant: /root/team-a
    qos: { totalIopsMax: 5000, iopsPerGiB: 100, readBandwidthMax: 1000 }
    fsType: ext4
    defaultSize: 32Gi
    minSize: 2Gi
    maxSize: 100Gi
    overridable: [replicas, qos.totalIopsMax, placement]
  - name: plain
    description: sets nothing
  - name: locked
    replicas: 3
    overridable: []
  - name: snap
    snapshotPolicies:
      - { name: hourly, interval: 1hour, retentionCount: 24 }
      - { name: daily, interval: 1day, retentionCount: 7, startTime: "2024-01-01T02:00:00Z" }
  - name: bw
    qos: { bandwidthPerGiB: 1000, totalBandwidthMax: 0, writeIopsMax: 300 }
    overridable: [qos]
  - name: dt
    dateraTemplate: gold_tpl
    overridable: [fsType]
  - name: dt-fixed
    dateraTemplate: gold_tpl
    disableTemplateOverride: true
  - name: sized
    defaultSize: 20Gi
`);

function newClaim(over: Partial<ClaimInput> = {}): ClaimInput {
  return { namespace: 'apps', name: 'data-db-0', uid: PV.slice(4), annotations: {}, requestBytes: 10n * Gi, accessModes: ['ReadWriteOnce'], ...over };
}

interface Case {
  params?: Record<string, string>;
  annotations?: Record<string, string>;
  /** `null` = the claim has no storage request. */
  request?: bigint | null;
  defaults?: TranslateInput['defaults'];
  pvName?: string;
  accessModes?: string[];
  templates?: TemplateSet;
}

function newInput(c: Case): TranslateInput {
  const claim = newClaim({ annotations: c.annotations ?? {} });
  if (c.request === null) delete claim.requestBytes;
  else if (c.request !== undefined) claim.requestBytes = c.request;
  if (c.accessModes !== undefined) claim.accessModes = c.accessModes;
  const input: TranslateInput = {
    pvName: c.pvName ?? PV,
    className: 'datera-sc',
    parameters: c.params ?? {},
    claim,
    templates: c.templates ?? TEMPLATES,
  };
  if (c.defaults !== undefined) input.defaults = c.defaults;
  return input;
}

/** The explicit-layout request, written out from the expected values. */
function volumeRequest(o: {
  size: number;
  replicas?: number;
  pool?: string;
  mode?: string;
  policy?: string;
  perf?: PerformancePolicy;
  snaps?: SnapshotPolicy[];
}): AppInstanceCreate {
  const vol: Record<string, unknown> = { name: 'volume-1', size: o.size, replica_count: o.replicas ?? 3 };
  if (o.mode) vol['placement_mode'] = o.mode;
  if (o.policy) vol['placement_policy'] = { path: `/placement_policies/${o.policy}` };
  if (o.perf) vol['performance_policy'] = o.perf;
  if (o.snaps) vol['snapshot_policies'] = o.snaps;
  const si: Record<string, unknown> = { name: 'storage-1', volumes: [vol] };
  if (o.pool) si['ip_pool'] = { path: `/access_network_ip_pools/${o.pool}` };
  return { name: PV, create_mode: 'kubernetes', storage_instances: [si as never] };
}

function templateRequest(tpl: string, size?: number): AppInstanceCreate {
  const r: AppInstanceCreate = { name: PV, create_mode: 'kubernetes', app_template: { path: `/app_templates/${tpl}` } };
  if (size !== undefined) {
    r.template_override = { storage_instances: { 'storage-1': { volumes: { 'volume-1': { size: String(size) } } } } };
  }
  return r;
}

function vol(o: Partial<VolumeParams> & { sizeGiB: number }): VolumeParams {
  return { appInstanceName: PV, replicas: 3, fsType: 'xfs', qos: {}, ...o };
}

// ---------------------------------------------------------------------------------------------

describe('provision/template', () => {
  describe('parseQuantity', () => {
    const valid: [string, bigint][] = [
      ['1Gi', Gi],
      ['1.5Gi', 3n * Gi / 2n],
      ['500M', 500_000_000n],
      ['10G', 10_000_000_000n],
      ['1k', 1000n],
      ['1Ki', Ki],
      ['3Mi', 3n * Mi],
      ['2Ti', 2n * Ti],
      ['1Pi', Pi],
      ['7Ei', 7n * Ei],
      ['2T', 2_000_000_000_000n],
      ['1P', 10n ** 15n],
      ['1E', 10n ** 18n],
      ['1e9', 1_000_000_000n],
      ['1E9', 1_000_000_000n],
      ['2.5e3', 2500n],
      ['1e+3', 1000n],
      ['1e-3', 1n],
      ['1e0', 1n],
      ['123', 123n],
      ['0', 0n],
      ['-0', 0n],
      ['+1Gi', Gi],
      ['.5Gi', Gi / 2n],
      ['1.Gi', Gi],
      ['0.5', 1n],
      ['1.5', 2n],
      ['500m', 1n],
      ['1500m', 2n],
      ['100n', 1n],
      ['3u', 1n],
      ['0.1Ki', 103n],
      ['1.000000001G', 1_000_000_001n],
      ['0001Gi', Gi],
      ['9223372036854775807', (1n << 63n) - 1n],
    ];
    for (const [q, bytes] of valid) {
      it(`${JSON.stringify(q)} is ${bytes} bytes`, () => {
        expect(parseQuantity(q)).to.equal(bytes);
      });
    }

    const invalid = [
      '', ' 1Gi', '1Gi ', '1 Gi', '1K', '1gi', '1GiB', 'Gi', '1.5.5', '-1Gi', '-1', '0x10', '1e', '1e3Gi',
      'abc', '--1', '1,5Gi', 'NaN', 'Infinity', '.', '1Gi1', '8Ei', '9223372036854775808', '1e100', '1_000',
    ];
    for (const q of invalid) {
      it(`${JSON.stringify(q)} is not a (non-negative, int64) quantity`, () => {
        expect(parseQuantity(q)).to.equal(undefined);
      });
    }
  });

  describe('parseTemplates: errors name the template, the key and what is allowed', () => {
    const cases: { name: string; yaml: string; errors: string[]; count?: number }[] = [
      {
        name: 'replicas out of range',
        yaml: 'templates:\n  - name: fast\n    replicas: 7\n',
        errors: ['template "fast": replicas must be an integer 1..5, got 7'],
        count: 1,
      },
      { name: 'replicas not an integer', yaml: 'templates:\n  - name: fast\n    replicas: 2.5\n', errors: ['replicas must be an integer 1..5, got 2.5'] },
      { name: 'replicas as a string', yaml: 'templates:\n  - name: fast\n    replicas: "3"\n', errors: ['replicas must be an integer 1..5, got "3"'] },
      {
        name: 'unknown template key, with a suggestion',
        yaml: 'templates:\n  - name: fast\n    replica: 3\n',
        errors: ['template "fast": unknown key replica (did you mean replicas?); allowed: name, description, replicas,'],
      },
      { name: 'unknown top-level key', yaml: 'templates: []\ndefaults: {}\n', errors: ['templates.yaml: unknown key defaults; allowed: templates'] },
      {
        name: 'duplicate names',
        yaml: 'templates:\n  - name: fast\n  - name: slow\n  - name: fast\n',
        errors: ['template "fast": duplicate name (templates[0] and templates[2]); names must be unique'],
        count: 1,
      },
      {
        name: 'duplicate names even when both entries are invalid',
        yaml: 'templates:\n  - name: fast\n    replicas: 0\n  - name: fast\n    replicas: 9\n',
        errors: ['duplicate name (templates[0] and templates[1])', 'got 0', 'got 9'],
        count: 3,
      },
      {
        name: 'bad YAML reports the line',
        yaml: 'templates:\n  - name: fast\n   replicas: 3\n',
        errors: ['templates.yaml is not valid YAML: bad indentation of a sequence entry at line 3, column 4'],
      },
      {
        name: 'a key given twice is a YAML error with its line',
        yaml: 'templates:\n  - name: fast\n    replicas: 3\n    replicas: 2\n',
        errors: ['duplicated mapping key at line 4'],
      },
      { name: 'empty text', yaml: '', errors: ['templates.yaml is empty; write "templates: []" to define no templates'] },
      { name: 'only comments', yaml: '# nothing here\n', errors: ['templates.yaml is empty'] },
      { name: 'a list at the top', yaml: '- name: fast\n', errors: ['templates.yaml must be a mapping with a "templates" list, got a list'] },
      { name: 'templates is not a list', yaml: 'templates:\n  fast: {}\n', errors: ['"templates" must be a list of templates', 'got a mapping'] },
      { name: 'templates left empty', yaml: 'templates:\n', errors: ['"templates" must be a list', 'got null'] },
      { name: 'entry is not a mapping', yaml: 'templates:\n  - fast\n', errors: ['templates[0] must be a mapping with at least a name, got "fast"'] },
      { name: 'name missing', yaml: 'templates:\n  - replicas: 3\n', errors: ['templates[0]: name is required'] },
      { name: 'name with a space', yaml: 'templates:\n  - name: my fast\n', errors: ['template "my fast": name must be a template name'] },
      { name: 'name not a string', yaml: 'templates:\n  - name: 42\n', errors: ['templates[0]: name must be a template name', 'got 42'] },
      { name: 'description not a string', yaml: 'templates:\n  - name: a\n    description: [x]\n', errors: ['template "a": description must be a string, got a list'] },
      {
        name: 'placement mode not in the enum',
        yaml: 'templates:\n  - name: a\n    placement: { mode: flash }\n',
        errors: ['template "a": placement.mode must be one of hybrid, single_flash, all_flash, got "flash"'],
      },
      {
        name: 'unknown placement key',
        yaml: 'templates:\n  - name: a\n    placement: { mdoe: hybrid }\n',
        errors: ['template "a": unknown key placement.mdoe (did you mean placement.mode?); allowed: placement.mode, placement.policy'],
      },
      { name: 'placement not a mapping', yaml: 'templates:\n  - name: a\n    placement: hybrid\n', errors: ['placement must be a mapping with mode and/or policy, got "hybrid"'] },
      { name: 'placement policy not a Datera name', yaml: 'templates:\n  - name: a\n    placement: { policy: "x/y" }\n', errors: ['placement.policy must be a Datera name'] },
      { name: 'ipPool too short', yaml: 'templates:\n  - name: a\n    ipPool: ab\n', errors: ['template "a": ipPool must be a Datera name', 'got "ab"'] },
      { name: 'tenant not a path', yaml: 'templates:\n  - name: a\n    tenant: team-a\n', errors: ['tenant must be a tenant path, "/root" or "/root/<name>"'] },
      {
        name: 'unknown qos key, with a suggestion',
        yaml: 'templates:\n  - name: a\n    qos: { maxIops: 10 }\n',
        errors: ['template "a": unknown key qos.maxIops', 'allowed: qos.totalIopsMax, qos.readIopsMax'],
      },
      {
        name: 'IOPS above the API maximum',
        yaml: 'templates:\n  - name: a\n    qos: { totalIopsMax: 10000001 }\n',
        errors: ['qos.totalIopsMax must be an integer 0..10000000 (IOPS, 0 = unlimited), got 10000001'],
      },
      {
        name: 'bandwidth above the API maximum',
        yaml: 'templates:\n  - name: a\n    qos: { readBandwidthMax: 10240001 }\n',
        errors: ['qos.readBandwidthMax must be an integer 0..10240000 (KiB/s, 0 = unlimited), got 10240001'],
      },
      { name: 'negative IOPS', yaml: 'templates:\n  - name: a\n    qos: { writeIopsMax: -1 }\n', errors: ['qos.writeIopsMax must be an integer 0..10000000'] },
      { name: 'qos not a mapping', yaml: 'templates:\n  - name: a\n    qos: 1000\n', errors: ['qos must be a mapping of limits, got 1000'] },
      {
        name: 'snapshot interval not in the enum',
        yaml: 'templates:\n  - name: a\n    snapshotPolicies: [{ name: hourly, interval: 1h, retentionCount: 3 }]\n',
        errors: ['template "a": snapshotPolicies[0].interval must be one of 1min, 2min, 15min, 1hour, 1day, 1week, 1month, 1year, got "1h"'],
      },
      {
        name: 'snapshot retention out of range',
        yaml: 'templates:\n  - name: a\n    snapshotPolicies: [{ name: hourly, interval: 1hour, retentionCount: 257 }]\n',
        errors: ['snapshotPolicies[0].retentionCount must be an integer 1..256, got 257'],
      },
      {
        name: 'snapshot required keys missing',
        yaml: 'templates:\n  - name: a\n    snapshotPolicies: [{ interval: 1hour }]\n',
        errors: ['snapshotPolicies[0].name is required', 'snapshotPolicies[0].retentionCount is required'],
      },
      {
        name: 'snapshot policy names repeat',
        yaml: 'templates:\n  - name: a\n    snapshotPolicies:\n      - { name: hourly, interval: 1hour, retentionCount: 2 }\n      - { name: hourly, interval: 1day, retentionCount: 2 }\n',
        errors: ['snapshotPolicies[1].name "hourly" is used by another snapshot policy'],
      },
      {
        name: 'snapshot start time without a zone',
        yaml: 'templates:\n  - name: a\n    snapshotPolicies: [{ name: hourly, interval: 1hour, retentionCount: 2, startTime: "2024-01-01 02:00" }]\n',
        errors: ['snapshotPolicies[0].startTime must be an ISO 8601 date-time with a zone'],
      },
      {
        name: 'unknown snapshot policy key',
        yaml: 'templates:\n  - name: a\n    snapshotPolicies: [{ name: hourly, interval: 1hour, retention: 2 }]\n',
        errors: ['unknown key snapshotPolicies[0].retention', 'snapshotPolicies[0].retentionCount is required'],
      },
      { name: 'snapshotPolicies not a list', yaml: 'templates:\n  - name: a\n    snapshotPolicies: {}\n', errors: ['snapshotPolicies must be a list'] },
      { name: 'fsType not supported', yaml: 'templates:\n  - name: a\n    fsType: ext3\n', errors: ['template "a": fsType must be one of xfs, ext4, got "ext3"'] },
      {
        name: 'defaultSize as a bare number',
        yaml: 'templates:\n  - name: a\n    defaultSize: 16\n',
        errors: ['template "a": defaultSize must be a Kubernetes quantity with a unit, e.g. 16Gi, 500G or 1Ti, got the bare number 16 (that would mean bytes)'],
      },
      { name: 'defaultSize not a quantity', yaml: 'templates:\n  - name: a\n    defaultSize: 16GB\n', errors: ['defaultSize must be a Kubernetes quantity with a unit', 'got "16GB"'] },
      { name: 'defaultSize above the Datera maximum', yaml: 'templates:\n  - name: a\n    defaultSize: 33Ti\n', errors: ['defaultSize 33792Gi exceeds the Datera maximum of 32768Gi'] },
      {
        name: 'minSize above maxSize',
        yaml: 'templates:\n  - name: a\n    minSize: 10Gi\n    maxSize: 5Gi\n',
        errors: ['template "a": minSize (10Gi after rounding up) is larger than maxSize (5Gi after rounding down)'],
      },
      {
        name: 'defaultSize outside minSize..maxSize',
        yaml: 'templates:\n  - name: a\n    defaultSize: 1Gi\n    minSize: 10Gi\n',
        errors: ['template "a": defaultSize 1Gi is outside minSize..maxSize (10Gi..32768Gi)'],
      },
      { name: 'maxSize below one GiB', yaml: 'templates:\n  - name: a\n    maxSize: 500Mi\n', errors: ['maxSize 524288000 bytes is below 1Gi'] },
      {
        name: 'dateraTemplate next to volume settings',
        yaml: 'templates:\n  - name: a\n    dateraTemplate: gold_tpl\n    replicas: 3\n    qos: { totalIopsMax: 5 }\n',
        errors: ['template "a": dateraTemplate "gold_tpl" decides replicas, placement, ipPool, qos and snapshotPolicies, so they may not be set next to it; remove replicas, qos'],
      },
      {
        name: 'dateraTemplate with volume keys overridable',
        yaml: 'templates:\n  - name: a\n    dateraTemplate: gold_tpl\n    overridable: [fsType, replicas]\n',
        errors: ['with dateraTemplate only fsType may be overridable; remove replicas from overridable'],
      },
      { name: 'dateraTemplate not a Datera name', yaml: 'templates:\n  - name: a\n    dateraTemplate: /app_templates/x\n', errors: ['dateraTemplate must be a Datera name'] },
      {
        name: 'disableTemplateOverride without dateraTemplate',
        yaml: 'templates:\n  - name: a\n    disableTemplateOverride: true\n',
        errors: ['template "a": disableTemplateOverride applies only together with dateraTemplate'],
      },
      { name: 'disableTemplateOverride not a boolean', yaml: 'templates:\n  - name: a\n    dateraTemplate: gold_tpl\n    disableTemplateOverride: "yes"\n', errors: ['disableTemplateOverride must be true or false, got "yes"'] },
      {
        name: 'overridable names an unknown key',
        yaml: 'templates:\n  - name: a\n    overridable: [replicas, qos.totalIops]\n',
        errors: ['template "a": overridable entry "qos.totalIops" is not an overridable key (did you mean qos.totalIopsMax?); allowed: replicas,'],
      },
      { name: 'overridable may not list sizes', yaml: 'templates:\n  - name: a\n    overridable: [maxSize]\n', errors: ['overridable entry "maxSize" is not an overridable key'] },
      { name: 'overridable not a list', yaml: 'templates:\n  - name: a\n    overridable: replicas\n', errors: ['overridable must be a list of keys'] },
      {
        name: 'every problem of every template is reported at once',
        yaml: 'templates:\n  - name: a\n    replicas: 0\n    fsType: zfs\n  - name: b\n    ipPool: x\n',
        errors: ['template "a": replicas', 'template "a": fsType', 'template "b": ipPool'],
        count: 3,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const r = parseTemplates(c.yaml);
        expect(r.ok, 'should be refused').to.equal(false);
        if (r.ok) return;
        for (const want of c.errors) {
          expect(r.errors.some((e) => e.includes(want)), `no error contains ${JSON.stringify(want)} in:\n${r.errors.join('\n')}`).to.equal(true);
        }
        if (c.count !== undefined) expect(r.errors, r.errors.join('\n')).to.have.length(c.count);
      });
    }
  });

  describe('parseTemplates: normalised result', () => {
    const cases: { name: string; yaml: string; spec: AppTemplateSpec }[] = [
      { name: 'a bare template', yaml: 'templates:\n  - name: a\n', spec: { name: 'a', qos: {}, snapshotPolicies: [], overridable: [] } },
      {
        name: 'every key, with shorthands expanded and sizes in GiB',
        yaml: `templates:
  - name: full
    description: all keys
    replicas: 2
    placement: { mode: single_flash, policy: flash-first }
    ipPool: pool-a
    tenant: /root/team-a
    qos: { totalIopsMax: 100, readIopsMax: 1, writeIopsMax: 2, totalBandwidthMax: 3, readBandwidthMax: 4, writeBandwidthMax: 5, iopsPerGiB: 6, bandwidthPerGiB: 7 }
    snapshotPolicies:
      - { name: daily, interval: 1day, retentionCount: 7, startTime: 2024-01-01T02:00:00Z }
    fsType: ext4
    defaultSize: 1.5Gi
    minSize: 1000M
    maxSize: 10.5Gi
    overridable: [qos, fsType, placement]
`,
        spec: {
          name: 'full',
          description: 'all keys',
          replicas: 2,
          placement: { mode: 'single_flash', policy: 'flash-first' },
          ipPool: 'pool-a',
          tenant: '/root/team-a',
          qos: { totalIopsMax: 100, readIopsMax: 1, writeIopsMax: 2, totalBandwidthMax: 3, readBandwidthMax: 4, writeBandwidthMax: 5, iopsPerGiB: 6, bandwidthPerGiB: 7 },
          // an unquoted YAML timestamp arrives as a Date and is sent as ISO 8601
          snapshotPolicies: [{ name: 'daily', interval: '1day', retention_count: 7, start_time: '2024-01-01T02:00:00.000Z' }],
          fsType: 'ext4',
          defaultSizeGiB: 2,
          minSizeGiB: 1,
          maxSizeGiB: 10,
          overridable: [
            'placement.mode', 'placement.policy', 'fsType', 'qos.totalIopsMax', 'qos.readIopsMax', 'qos.writeIopsMax',
            'qos.totalBandwidthMax', 'qos.readBandwidthMax', 'qos.writeBandwidthMax', 'qos.iopsPerGiB', 'qos.bandwidthPerGiB',
          ],
        },
      },
      {
        name: 'a Datera-side template',
        yaml: 'templates:\n  - name: d\n    dateraTemplate: basic_small\n    disableTemplateOverride: true\n    overridable: [fsType]\n',
        spec: { name: 'd', dateraTemplate: 'basic_small', disableTemplateOverride: true, qos: {}, snapshotPolicies: [], overridable: ['fsType'] },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const r = parseTemplates(c.yaml);
        if (!r.ok) expect.fail(r.errors.join('\n'));
        expect([...r.set.templates.values()]).to.deep.equal([c.spec]);
      });
    }

    it('"templates: []" is a valid, empty set', () => {
      const r = parseTemplates('templates: []\n');
      expect(r.ok).to.equal(true);
      if (r.ok) expect(r.set.templates.size).to.equal(0);
    });
  });

  describe('config/templates.yaml (the example admins edit)', () => {
    const text = readFileSync(new URL('../../config/templates.yaml', import.meta.url), 'utf8');
    const parsed = parseTemplates(text);

    it('parses cleanly', () => {
      if (!parsed.ok) expect.fail(parsed.errors.join('\n'));
      expect([...parsed.set.templates.keys()]).to.deep.equal(['standard', 'fast', 'bulk', 'protected', 'datera-basic']);
    });

    it('every example template yields a request for a claim without a size', () => {
      if (!parsed.ok) expect.fail(parsed.errors.join('\n'));
      for (const name of parsed.set.templates.keys()) {
        const r = appInstanceRequest(newInput({ params: { template: name }, request: null, templates: parsed.set }));
        if (!r.ok) expect.fail(`${name}: ${r.error.message}`);
      }
    });

    it('"fast" scales IOPS with size as its comment says', () => {
      if (!parsed.ok) expect.fail(parsed.errors.join('\n'));
      const at = (g: bigint): number | undefined => {
        const r = appInstanceRequest(newInput({ params: { template: 'fast' }, request: g * Gi, templates: parsed.set }));
        return r.ok ? r.volume.qos.total_iops_max : undefined;
      };
      expect(at(100n)).to.equal(5000);
      expect(at(1024n)).to.equal(20000);
    });
  });

  describe('appInstanceRequest', () => {
    type Want = { request: AppInstanceCreate; volume: VolumeParams } | { error: string; parameter: string };
    const rows: (Case & { name: string; want: Want })[] = [
      // --- defaults ----------------------------------------------------------------------------
      {
        name: 'a class with no template and no parameters: 3 replicas, xfs, nothing else sent',
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) },
      },
      {
        name: 'no request and nothing else: 16 GiB',
        request: null,
        want: { request: volumeRequest({ size: 16 }), volume: vol({ sizeGiB: 16 }) },
      },
      {
        name: 'controller defaults fill fsType and tenant',
        defaults: { fsType: 'ext4', tenant: '/root/k8s' },
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10, fsType: 'ext4', tenant: '/root/k8s' }) },
      },
      {
        name: 'a bad controller default is reported as such',
        defaults: { fsType: 'btrfs' },
        want: { error: 'controller default fsType must be one of xfs, ext4, got "btrfs"', parameter: 'defaults.fsType' },
      },

      // --- the AppTemplate layer -------------------------------------------------------------
      {
        name: 'template "fast" at 10 GiB: per-GiB IOPS (100 x 10) below the 5000 cap',
        params: { template: 'fast' },
        defaults: { fsType: 'xfs', tenant: '/root/k8s' },
        want: {
          request: volumeRequest({ size: 10, replicas: 2, pool: 'pool-a', mode: 'all_flash', policy: 'all-flash', perf: { total_iops_max: 1000, read_bandwidth_max: 1000 } }),
          volume: vol({
            sizeGiB: 10, replicas: 2, fsType: 'ext4', template: 'fast', tenant: '/root/team-a', ipPool: 'pool-a',
            placementMode: 'all_flash', placementPolicy: 'all-flash', qos: { total_iops_max: 1000, read_bandwidth_max: 1000 },
          }),
        },
      },
      {
        name: 'template "fast" at 80 GiB: the absolute 5000 caps 100 x 80',
        params: { template: 'fast' },
        request: 80n * Gi,
        want: {
          request: volumeRequest({ size: 80, replicas: 2, pool: 'pool-a', mode: 'all_flash', policy: 'all-flash', perf: { total_iops_max: 5000, read_bandwidth_max: 1000 } }),
          volume: vol({
            sizeGiB: 80, replicas: 2, fsType: 'ext4', template: 'fast', tenant: '/root/team-a', ipPool: 'pool-a',
            placementMode: 'all_flash', placementPolicy: 'all-flash', qos: { total_iops_max: 5000, read_bandwidth_max: 1000 },
          }),
        },
      },
      {
        name: 'appTemplate is an alias of template',
        params: { appTemplate: 'plain' },
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10, template: 'plain' }) },
      },
      {
        name: 'template snapshot policies go on the volume',
        params: { template: 'snap' },
        want: {
          request: volumeRequest({
            size: 10,
            snaps: [
              { name: 'hourly', interval: '1hour', retention_count: 24 },
              { name: 'daily', interval: '1day', retention_count: 7, start_time: '2024-01-01T02:00:00Z' },
            ],
          }),
          volume: vol({ sizeGiB: 10, template: 'snap' }),
        },
      },
      {
        name: 'template per-GiB bandwidth with an explicit 0 (no) cap; write IOPS passed through',
        params: { template: 'bw' },
        request: 5n * Gi,
        want: {
          request: volumeRequest({ size: 5, perf: { total_bandwidth_max: 5000, write_iops_max: 300 } }),
          volume: vol({ sizeGiB: 5, template: 'bw', qos: { total_bandwidth_max: 5000, write_iops_max: 300 } }),
        },
      },
      {
        name: 'template defaultSize when the claim has no request',
        params: { template: 'sized' },
        request: null,
        want: { request: volumeRequest({ size: 20 }), volume: vol({ sizeGiB: 20, template: 'sized' }) },
      },
      {
        name: 'an unknown template is refused, naming the defined ones',
        params: { template: 'fsat' },
        want: {
          error: 'StorageClass "datera-sc" parameter "template" names AppTemplate "fsat", which is not defined (did you mean "fast"?); defined templates: bw, dt, dt-fixed, fast, locked, plain, sized, snap',
          parameter: 'template',
        },
      },
      {
        name: 'an unknown template in an empty set',
        params: { appTemplate: 'gold' },
        templates: templateSet('templates: []'),
        want: { error: 'names AppTemplate "gold", which is not defined; defined templates: (none)', parameter: 'appTemplate' },
      },

      // --- StorageClass parameters beat the template -------------------------------------------
      {
        name: 'class parameters replace template values key by key',
        params: { template: 'fast', replica_count: '4', fs_type: 'xfs', ip_pool: 'pool-b', tenant: '/root/team-b', placement_mode: 'hybrid' },
        want: {
          request: volumeRequest({ size: 10, replicas: 4, pool: 'pool-b', mode: 'hybrid', policy: 'all-flash', perf: { total_iops_max: 1000, read_bandwidth_max: 1000 } }),
          volume: vol({
            sizeGiB: 10, replicas: 4, fsType: 'xfs', template: 'fast', tenant: '/root/team-b', ipPool: 'pool-b',
            placementMode: 'hybrid', placementPolicy: 'all-flash', qos: { total_iops_max: 1000, read_bandwidth_max: 1000 },
          }),
        },
      },
      {
        name: 'class total_iops_max "0" lifts the template cap: only per-GiB remains',
        params: { template: 'fast', total_iops_max: '0' },
        request: 80n * Gi,
        want: {
          request: volumeRequest({ size: 80, replicas: 2, pool: 'pool-a', mode: 'all_flash', policy: 'all-flash', perf: { total_iops_max: 8000, read_bandwidth_max: 1000 } }),
          volume: vol({
            sizeGiB: 80, replicas: 2, fsType: 'ext4', template: 'fast', tenant: '/root/team-a', ipPool: 'pool-a',
            placementMode: 'all_flash', placementPolicy: 'all-flash', qos: { total_iops_max: 8000, read_bandwidth_max: 1000 },
          }),
        },
      },
      {
        name: 'class iops_per_gb "0" turns per-GiB off: the absolute applies',
        params: { template: 'fast', iops_per_gb: '0', read_bandwidth_max: '0' },
        want: {
          request: volumeRequest({ size: 10, replicas: 2, pool: 'pool-a', mode: 'all_flash', policy: 'all-flash', perf: { total_iops_max: 5000 } }),
          volume: vol({
            sizeGiB: 10, replicas: 2, fsType: 'ext4', template: 'fast', tenant: '/root/team-a', ipPool: 'pool-a',
            placementMode: 'all_flash', placementPolicy: 'all-flash', qos: { total_iops_max: 5000 },
          }),
        },
      },
      {
        name: 'class size beats template defaultSize',
        params: { template: 'sized', size: '30' },
        request: null,
        want: { request: volumeRequest({ size: 30 }), volume: vol({ sizeGiB: 30, template: 'sized' }) },
      },
      {
        name: 'the claim request beats the class size',
        params: { size: '30' },
        request: 2n * Gi,
        want: { request: volumeRequest({ size: 2 }), volume: vol({ sizeGiB: 2 }) },
      },
      {
        name: 'class fsType beats the controller default',
        params: { fsType: 'ext4' },
        defaults: { fsType: 'xfs' },
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10, fsType: 'ext4' }) },
      },

      // --- claim annotations beat the class, for overridable keys only --------------------------
      {
        name: 'annotation overrides replicas over both template and class',
        params: { template: 'fast', replica: '4' },
        annotations: { 'datera.io/replicas': '5', 'datera.io/qos.totalIopsMax': '700', 'datera.io/placement.policy': 'gold-media' },
        want: {
          request: volumeRequest({ size: 10, replicas: 5, pool: 'pool-a', mode: 'all_flash', policy: 'gold-media', perf: { total_iops_max: 700, read_bandwidth_max: 1000 } }),
          volume: vol({
            sizeGiB: 10, replicas: 5, fsType: 'ext4', template: 'fast', tenant: '/root/team-a', ipPool: 'pool-a',
            placementMode: 'all_flash', placementPolicy: 'gold-media', qos: { total_iops_max: 700, read_bandwidth_max: 1000 },
          }),
        },
      },
      {
        name: 'the "qos" shorthand allows every qos key',
        params: { template: 'bw' },
        annotations: { 'datera.io/qos.bandwidthPerGiB': '10', 'datera.io/qos.readIopsMax': '50' },
        want: {
          request: volumeRequest({ size: 10, perf: { total_bandwidth_max: 100, read_iops_max: 50, write_iops_max: 300 } }),
          volume: vol({ sizeGiB: 10, template: 'bw', qos: { total_bandwidth_max: 100, read_iops_max: 50, write_iops_max: 300 } }),
        },
      },
      {
        name: 'other datera.io annotations and foreign annotations are not overrides',
        annotations: { 'datera.io/volume-id': 'x', 'volume.beta.kubernetes.io/storage-provisioner': 'datera.io/provisioner-datera', replicas: '1' },
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) },
      },
      {
        name: 'a key the template does not list is refused, listing what is allowed',
        params: { template: 'fast' },
        annotations: { 'datera.io/fsType': 'xfs' },
        want: {
          error: 'claim annotation "datera.io/fsType" may not override fsType: template "fast" allows overriding only: replicas, placement.mode, placement.policy, qos.totalIopsMax',
          parameter: 'datera.io/fsType',
        },
      },
      {
        name: 'a template with an empty overridable list refuses everything',
        params: { template: 'locked' },
        annotations: { 'datera.io/replicas': '1' },
        want: { error: 'template "locked" allows no overrides', parameter: 'datera.io/replicas' },
      },
      {
        name: 'without a template nothing is overridable',
        annotations: { 'datera.io/replicas': '1' },
        want: { error: 'StorageClass "datera-sc" names no AppTemplate, so claims may not override any setting', parameter: 'datera.io/replicas' },
      },
      {
        name: 'sizes are never overridable',
        params: { template: 'fast' },
        annotations: { 'datera.io/maxSize': '1Ti' },
        want: { error: 'claim annotation "datera.io/maxSize" is not an overridable key', parameter: 'datera.io/maxSize' },
      },
      {
        name: 'a misspelt qos key is refused, not ignored',
        params: { template: 'fast' },
        annotations: { 'datera.io/qos.totalIops': '1' },
        want: { error: 'claim annotation "datera.io/qos.totalIops" is not an overridable key', parameter: 'datera.io/qos.totalIops' },
      },
      {
        name: 'a StorageClass spelling as annotation is refused with the right key',
        params: { template: 'fast' },
        annotations: { 'datera.io/replica_count': '2' },
        want: { error: 'is a StorageClass parameter, not an override key (override annotations use AppTemplate keys: did you mean "datera.io/replicas"?)', parameter: 'datera.io/replica_count' },
      },
      {
        name: 'a claim may not pick its own template',
        params: { template: 'fast' },
        annotations: { 'datera.io/template': 'plain' },
        want: { error: 'claim annotation "datera.io/template" is a StorageClass parameter', parameter: 'datera.io/template' },
      },
      {
        name: 'an allowed annotation with a bad value names the annotation and the range',
        params: { template: 'fast' },
        annotations: { 'datera.io/replicas': '9' },
        want: { error: 'claim annotation "datera.io/replicas" must be an integer 1..5, got "9"', parameter: 'datera.io/replicas' },
      },

      // --- aliases --------------------------------------------------------------------------------
      {
        name: 'two spellings with the same value are fine',
        params: { replica_count: '2', replica: '2', fs_type: 'ext4', 'csi.storage.k8s.io/fstype': 'ext4' },
        want: { request: volumeRequest({ size: 10, replicas: 2 }), volume: vol({ sizeGiB: 10, replicas: 2, fsType: 'ext4' }) },
      },
      {
        name: 'two spellings that disagree are refused',
        params: { replica_count: '3', replica: '2' },
        want: { error: 'StorageClass "datera-sc" parameters "replica_count" and "replica" set the same thing but disagree ("3" vs "2"); set only one of them', parameter: 'replica' },
      },
      {
        name: 'maxIops disagrees with total_iops_max',
        params: { maxIops: '100', total_iops_max: '200' },
        want: { error: 'parameters "maxIops" and "total_iops_max" set the same thing but disagree', parameter: 'total_iops_max' },
      },
      {
        name: 'fsType disagrees with csi.storage.k8s.io/fstype',
        params: { 'csi.storage.k8s.io/fstype': 'xfs', fsType: 'ext4' },
        want: { error: 'parameters "csi.storage.k8s.io/fstype" and "fsType" set the same thing but disagree', parameter: 'fsType' },
      },
      {
        name: 'template and appTemplate disagree',
        params: { template: 'fast', appTemplate: 'plain' },
        want: { error: 'parameters "template" and "appTemplate" set the same thing but disagree', parameter: 'appTemplate' },
      },
      {
        name: 'an empty value means "not set" (old classes carry template: "")',
        params: { template: '', ip_pool: ' ', replica: '' },
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) },
      },

      // --- unknown parameters and bad values --------------------------------------------------------
      {
        name: 'an unknown parameter lists every allowed name',
        params: { replicas: '3' },
        want: {
          error:
            'StorageClass "datera-sc" has unknown parameter "replicas" (did you mean "replica"?); allowed parameters: template, appTemplate, replica_count, replica, placement_mode, placementMode, placement_policy, placementPolicy, ip_pool, ipPool, total_iops_max, maxIops, read_iops_max, write_iops_max, total_bandwidth_max, maxBW, read_bandwidth_max, write_bandwidth_max, iops_per_gb, bandwidth_per_gb, fs_type, fsType, csi.storage.k8s.io/fstype, datera_template, dateraTemplate, disable_template_override, tenant, secretName, secretNamespace, size',
          parameter: 'replicas',
        },
      },
      { name: 'a CSI-only parameter we do not support', params: { round_robin: 'true' }, want: { error: 'has unknown parameter "round_robin"; allowed parameters:', parameter: 'round_robin' } },
      { name: 'replica 0', params: { replica: '0' }, want: { error: 'StorageClass "datera-sc" parameter "replica" must be an integer 1..5, got "0"', parameter: 'replica' } },
      { name: 'replica_count 6', params: { replica_count: '6' }, want: { error: 'parameter "replica_count" must be an integer 1..5, got "6"', parameter: 'replica_count' } },
      { name: 'replica_count "3.0"', params: { replica_count: '3.0' }, want: { error: 'must be an integer 1..5, got "3.0"', parameter: 'replica_count' } },
      { name: 'replica "three"', params: { replica: 'three' }, want: { error: 'must be an integer 1..5, got "three"', parameter: 'replica' } },
      { name: 'total_iops_max above 10000000', params: { total_iops_max: '10000001' }, want: { error: 'parameter "total_iops_max" must be an integer 0..10000000 (IOPS, 0 = unlimited), got "10000001"', parameter: 'total_iops_max' } },
      { name: 'maxBW above 10240000 KiB/s', params: { maxBW: '10240001' }, want: { error: 'parameter "maxBW" must be an integer 0..10240000 (KiB/s, 0 = unlimited)', parameter: 'maxBW' } },
      { name: 'negative write_bandwidth_max', params: { write_bandwidth_max: '-5' }, want: { error: 'parameter "write_bandwidth_max" must be an integer 0..10240000', parameter: 'write_bandwidth_max' } },
      { name: 'placement_mode not in the enum', params: { placement_mode: 'fast' }, want: { error: 'parameter "placement_mode" must be one of hybrid, single_flash, all_flash, got "fast"', parameter: 'placement_mode' } },
      { name: 'placementPolicy with a slash', params: { placementPolicy: '/placement_policies/x' }, want: { error: 'parameter "placementPolicy" must be a Datera name', parameter: 'placementPolicy' } },
      { name: 'ip_pool too short', params: { ip_pool: 'a' }, want: { error: 'parameter "ip_pool" must be a Datera name', parameter: 'ip_pool' } },
      { name: 'fs_type ext3', params: { fs_type: 'ext3' }, want: { error: 'parameter "fs_type" must be one of xfs, ext4, got "ext3"', parameter: 'fs_type' } },
      { name: 'tenant without /root', params: { tenant: 'team-a' }, want: { error: 'parameter "tenant" must be a tenant path', parameter: 'tenant' } },
      { name: 'disable_template_override "maybe"', params: { disable_template_override: 'maybe' }, want: { error: 'must be "true" or "false", got "maybe"', parameter: 'disable_template_override' } },
      { name: 'secretName not a DNS name', params: { secretName: 'Datera_Secret' }, want: { error: 'parameter "secretName" must be a Kubernetes Secret name', parameter: 'secretName' } },
      { name: 'secretNamespace without secretName', params: { secretNamespace: 'kube-system' }, want: { error: 'sets secretNamespace without secretName', parameter: 'secretNamespace' } },
      { name: 'size 0', params: { size: '0' }, request: null, want: { error: 'parameter "size" must be a whole number of GiB or a quantity with a unit such as 16Gi, within 1..32768 GiB, got "0"', parameter: 'size' } },
      { name: 'size 40000', params: { size: '40000' }, request: null, want: { error: 'within 1..32768 GiB, got "40000"', parameter: 'size' } },
      { name: 'size "16GB" is not a quantity', params: { size: '16GB' }, request: null, want: { error: 'got "16GB"', parameter: 'size' } },
      {
        name: 'size as a quantity, rounded up',
        params: { size: '10G' },
        request: null,
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) },
      },

      // --- per-GiB QoS set directly on the class ---------------------------------------------------
      {
        name: 'iops_per_gb alone scales with size',
        params: { iops_per_gb: '30' },
        request: 7n * Gi,
        want: { request: volumeRequest({ size: 7, perf: { total_iops_max: 210 } }), volume: vol({ sizeGiB: 7, qos: { total_iops_max: 210 } }) },
      },
      {
        name: 'bandwidth_per_gb capped by total_bandwidth_max',
        params: { bandwidth_per_gb: '1000', total_bandwidth_max: '4096' },
        request: 7n * Gi,
        want: { request: volumeRequest({ size: 7, perf: { total_bandwidth_max: 4096 } }), volume: vol({ sizeGiB: 7, qos: { total_bandwidth_max: 4096 } }) },
      },
      {
        name: 'per-GiB IOPS never exceed the API maximum',
        params: { iops_per_gb: '1000' },
        request: 32768n * Gi,
        want: { request: volumeRequest({ size: 32768, perf: { total_iops_max: 10_000_000 } }), volume: vol({ sizeGiB: 32768, qos: { total_iops_max: 10_000_000 } }) },
      },
      {
        name: 'every absolute limit, zeros left out',
        params: { total_iops_max: '1', read_iops_max: '2', write_iops_max: '0', total_bandwidth_max: '4', read_bandwidth_max: '5', write_bandwidth_max: '6' },
        want: {
          request: volumeRequest({ size: 10, perf: { total_iops_max: 1, read_iops_max: 2, total_bandwidth_max: 4, read_bandwidth_max: 5, write_bandwidth_max: 6 } }),
          volume: vol({ sizeGiB: 10, qos: { total_iops_max: 1, read_iops_max: 2, total_bandwidth_max: 4, read_bandwidth_max: 5, write_bandwidth_max: 6 } }),
        },
      },

      // --- Datera-side templates --------------------------------------------------------------------
      {
        name: 'datera_template: app_template plus the size as a string override',
        params: { datera_template: 'gold_tpl', fs_type: 'ext4' },
        want: { request: templateRequest('gold_tpl', 10), volume: vol({ sizeGiB: 10, replicas: 0, fsType: 'ext4', dateraTemplate: 'gold_tpl' }) },
      },
      {
        name: 'datera_template with disable_template_override: no override',
        params: { dateraTemplate: 'gold_tpl', disable_template_override: 'true' },
        want: { request: templateRequest('gold_tpl'), volume: vol({ sizeGiB: 10, replicas: 0, dateraTemplate: 'gold_tpl' }) },
      },
      {
        name: 'an AppTemplate that refers to a Datera-side template',
        params: { template: 'dt' },
        annotations: { 'datera.io/fsType': 'ext4' },
        request: 3n * Gi,
        want: { request: templateRequest('gold_tpl', 3), volume: vol({ sizeGiB: 3, replicas: 0, fsType: 'ext4', template: 'dt', dateraTemplate: 'gold_tpl' }) },
      },
      {
        name: 'an AppTemplate that refers to a Datera-side template, override disabled',
        params: { template: 'dt-fixed' },
        want: { request: templateRequest('gold_tpl'), volume: vol({ sizeGiB: 10, replicas: 0, template: 'dt-fixed', dateraTemplate: 'gold_tpl' }) },
      },
      {
        name: 'the class may re-enable the override the template disabled',
        params: { template: 'dt-fixed', disable_template_override: 'false' },
        want: { request: templateRequest('gold_tpl', 10), volume: vol({ sizeGiB: 10, replicas: 0, template: 'dt-fixed', dateraTemplate: 'gold_tpl' }) },
      },
      {
        name: 'volume settings next to a Datera-side template are refused',
        params: { datera_template: 'gold_tpl', replica: '2' },
        want: { error: 'StorageClass "datera-sc" parameter "replica" cannot be combined with Datera-side template "gold_tpl" (set by StorageClass "datera-sc" parameter "datera_template")', parameter: 'replica' },
      },
      {
        name: 'a Datera-side template on top of an AppTemplate with volume settings: the class parameter is blamed',
        params: { template: 'fast', datera_template: 'gold_tpl' },
        want: { error: 'template "fast" key replicas cannot be combined with Datera-side template "gold_tpl"', parameter: 'datera_template' },
      },
      {
        name: 'disable_template_override true without a Datera-side template',
        params: { disable_template_override: 'true' },
        want: { error: 'is true but no Datera-side template is set', parameter: 'disable_template_override' },
      },
      {
        name: 'disable_template_override false without a Datera-side template is harmless',
        params: { disable_template_override: 'false' },
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) },
      },

      // --- parameter sets of the reference drivers --------------------------------------------------
      {
        name: 'legacy flex StorageClass (2016/2018 guides)',
        params: {
          template: 'plain', replica: '3', maxIops: '1000', maxBW: '2048', placementMode: 'hybrid', ipPool: 'default',
          fsType: 'xfs', secretName: 'datera-secret', secretNamespace: 'kube-system', size: '8', tenant: '/root',
        },
        request: null,
        want: {
          request: volumeRequest({ size: 8, replicas: 3, pool: 'default', mode: 'hybrid', perf: { total_iops_max: 1000, total_bandwidth_max: 2048 } }),
          volume: vol({
            sizeGiB: 8, template: 'plain', tenant: '/root', ipPool: 'default', placementMode: 'hybrid',
            secretName: 'datera-secret', secretNamespace: 'kube-system', qos: { total_iops_max: 1000, total_bandwidth_max: 2048 },
          }),
        },
      },
      {
        name: 'Datera CSI StorageClass spelling',
        params: {
          replica_count: '2', placement_mode: 'all_flash', placement_policy: 'default', ip_pool: 'default',
          total_iops_max: '3000', read_bandwidth_max: '4096', iops_per_gb: '10', 'csi.storage.k8s.io/fstype': 'ext4',
        },
        request: 100n * Gi,
        want: {
          request: volumeRequest({ size: 100, replicas: 2, pool: 'default', mode: 'all_flash', policy: 'default', perf: { total_iops_max: 1000, read_bandwidth_max: 4096 } }),
          volume: vol({
            sizeGiB: 100, replicas: 2, fsType: 'ext4', ipPool: 'default', placementMode: 'all_flash', placementPolicy: 'default',
            qos: { total_iops_max: 1000, read_bandwidth_max: 4096 },
          }),
        },
      },

      // --- size ----------------------------------------------------------------------------------------
      { name: 'one byte rounds up to 1 GiB', request: 1n, want: { request: volumeRequest({ size: 1 }), volume: vol({ sizeGiB: 1 }) } },
      { name: 'zero bytes is the 1 GiB minimum', request: 0n, want: { request: volumeRequest({ size: 1 }), volume: vol({ sizeGiB: 1 }) } },
      { name: '1Gi + 1 byte rounds up to 2', request: Gi + 1n, want: { request: volumeRequest({ size: 2 }), volume: vol({ sizeGiB: 2 }) } },
      { name: '1.5Gi rounds up to 2', request: parseQuantity('1.5Gi'), want: { request: volumeRequest({ size: 2 }), volume: vol({ sizeGiB: 2 }) } },
      { name: '10G (9.31 GiB) rounds up to 10', request: parseQuantity('10G'), want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) } },
      { name: '500M rounds up to 1', request: parseQuantity('500M'), want: { request: volumeRequest({ size: 1 }), volume: vol({ sizeGiB: 1 }) } },
      { name: '32Ti is the Datera maximum', request: 32n * Ti, want: { request: volumeRequest({ size: 32768 }), volume: vol({ sizeGiB: 32768 }) } },
      {
        name: 'above 32768 GiB is refused',
        request: 32n * Ti + 1n,
        want: { error: 'claim "apps/data-db-0" requests 35184372088833 bytes (32769Gi after rounding up), above the Datera maximum of 32768Gi per volume', parameter: 'resources.requests.storage' },
      },
      {
        name: 'below the template minSize',
        params: { template: 'fast' },
        request: Gi,
        want: { error: 'claim "apps/data-db-0" requests 1Gi (1Gi after rounding up to whole GiB), below minSize 2Gi of template "fast"', parameter: 'resources.requests.storage' },
      },
      {
        name: 'above the template maxSize after rounding up',
        params: { template: 'fast' },
        request: 100n * Gi + 1n,
        want: { error: 'requests 107374182401 bytes (101Gi after rounding up to whole GiB), above maxSize 100Gi of template "fast"', parameter: 'resources.requests.storage' },
      },
      {
        name: 'exactly the template maxSize',
        params: { template: 'fast', iops_per_gb: '0' },
        request: 100n * Gi,
        want: {
          request: volumeRequest({ size: 100, replicas: 2, pool: 'pool-a', mode: 'all_flash', policy: 'all-flash', perf: { total_iops_max: 5000, read_bandwidth_max: 1000 } }),
          volume: vol({
            sizeGiB: 100, replicas: 2, fsType: 'ext4', template: 'fast', tenant: '/root/team-a', ipPool: 'pool-a',
            placementMode: 'all_flash', placementPolicy: 'all-flash', qos: { total_iops_max: 5000, read_bandwidth_max: 1000 },
          }),
        },
      },
      {
        name: 'a class default size outside the template bounds',
        params: { template: 'fast', size: '200' },
        request: null,
        want: { error: 'has no storage request and the default size (StorageClass "datera-sc" parameter "size") is 200Gi, above maxSize 100Gi of template "fast"', parameter: 'resources.requests.storage' },
      },

      // --- claim and PV -------------------------------------------------------------------------------
      { name: 'a PV name Datera cannot take', pvName: 'pvc x', want: { error: 'PV name "pvc x" cannot be used as the Datera app instance name', parameter: 'pvName' } },
      { name: 'ReadWriteMany cannot be served', accessModes: ['ReadWriteOnce', 'ReadWriteMany'], want: { error: 'asks for access mode ReadWriteMany', parameter: 'accessModes' } },
      {
        name: 'every unsupported access mode is named',
        accessModes: ['ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod'],
        want: { error: 'asks for access mode ReadWriteMany, ReadWriteOncePod, which', parameter: 'accessModes' },
      },
      { name: 'a claim with no access mode is refused, as decideClaim refuses it', accessModes: [], want: { error: 'asks for no access mode; allowed: ReadWriteOnce, ReadOnlyMany', parameter: 'accessModes' } },
      {
        name: 'ReadOnlyMany is fine',
        accessModes: ['ReadOnlyMany'],
        want: { request: volumeRequest({ size: 10 }), volume: vol({ sizeGiB: 10 }) },
      },
    ];

    for (const row of rows) {
      it(row.name, () => {
        const got = appInstanceRequest(newInput(row));
        const want = row.want;
        if ('error' in want) {
          if (got.ok) expect.fail(`expected an error containing ${JSON.stringify(want.error)}, got ${JSON.stringify(got.request)}`);
          expect(got.error).to.be.instanceOf(ParameterError);
          expect(got.error.message).to.include(want.error);
          expect(got.error.parameter).to.equal(want.parameter);
          expect(got.error.allowed, 'allowed is filled in').to.be.a('string').that.is.not.empty;
        } else {
          if (!got.ok) expect.fail(got.error.message);
          expect(got.request).to.deep.equal(want.request);
          expect(got.volume).to.deep.equal(want.volume);
        }
      });
    }

    it('is deterministic and does not share objects with the template set', () => {
      const input = newInput({ params: { template: 'snap' } });
      const a = appInstanceRequest(input);
      const b = appInstanceRequest(input);
      expect(a).to.deep.equal(b);
      if (!a.ok) expect.fail(a.error.message);
      a.request.storage_instances?.[0]?.volumes?.[0]?.snapshot_policies?.pop();
      expect(TEMPLATES.templates.get('snap')?.snapshotPolicies).to.have.length(2);
    });

    it('re-checks ranges of a hand-built AppTemplateSpec', () => {
      const bad: AppTemplateSpec = { name: 'bad', replicas: 9, qos: {}, snapshotPolicies: [], overridable: [] };
      const r = appInstanceRequest(newInput({ params: { template: 'bad' }, templates: { templates: new Map([['bad', bad]]) } }));
      if (r.ok) expect.fail('accepted replicas 9');
      expect(r.error.message).to.equal('template "bad" key replicas must be an integer 1..5, got 9');
    });
  });
});

describe('provision/template: claim QoS overrides may only tighten', () => {
  const shipped = parseTemplates(readFileSync(new URL('../../config/templates.yaml', import.meta.url), 'utf8'));
  const SHIPPED = shipped.ok ? shipped.set : templateSet('templates: []');
  const limits = parseTemplates(`
templates:
  - name: open
    overridable: [qos]
  - name: capped
    qos: { totalIopsMax: 2000, bandwidthPerGiB: 100 }
    overridable: [qos]
  - name: raisable
    qos: { totalIopsMax: 2000, writeBandwidthMax: 1000 }
    qosOverrideMax: { totalIopsMax: 8000, writeBandwidthMax: 0 }
    overridable: [qos]
`);
  // Not templateSet(): a parse failure must fail the tests below, not the loading of this file.
  const LIMITS: TemplateSet = limits.ok ? limits.set : { templates: new Map() };
  type Row = { name: string; templates: TemplateSet; params: Record<string, string>; annotations: Record<string, string>; want: { qos: PerformancePolicy } | { error: string; parameter: string; allowed: string } };
  const rows: Row[] = [
    {
      name: 'shipped "bulk": qos.totalIopsMax "0" (unlimited) is refused, naming the annotation, the template limit and the allowed range',
      templates: SHIPPED,
      params: { template: 'bulk' },
      annotations: { 'datera.io/qos.totalIopsMax': '0' },
      want: {
        error:
          'claim annotation "datera.io/qos.totalIopsMax" asks for 0 (unlimited), but template "bulk" key qos.totalIopsMax sets the limit 2000; ' +
          'a claim may only tighten it: allowed 1..2000 (template "bulk" may allow more with qosOverrideMax.totalIopsMax)',
        parameter: 'datera.io/qos.totalIopsMax',
        allowed: '1..2000',
      },
    },
    {
      name: 'shipped "bulk": a higher qos.totalIopsMax is refused',
      templates: SHIPPED,
      params: { template: 'bulk' },
      annotations: { 'datera.io/qos.totalIopsMax': '2001' },
      want: { error: 'asks for 2001, but template "bulk" key qos.totalIopsMax sets the limit 2000', parameter: 'datera.io/qos.totalIopsMax', allowed: '1..2000' },
    },
    {
      name: 'shipped "bulk": a lower qos.totalIopsMax is sent',
      templates: SHIPPED,
      params: { template: 'bulk' },
      annotations: { 'datera.io/qos.totalIopsMax': '500', 'datera.io/qos.writeBandwidthMax': '102400' },
      want: { qos: { total_iops_max: 500, read_bandwidth_max: 204800, write_bandwidth_max: 102400 } },
    },
    {
      name: 'shipped "fast": qos.iopsPerGiB "0" would drop the per-GiB cap and is refused',
      templates: SHIPPED,
      params: { template: 'fast' },
      annotations: { 'datera.io/qos.iopsPerGiB': '0' },
      want: { error: 'asks for 0 (unlimited), but template "fast" key qos.iopsPerGiB sets the limit 50', parameter: 'datera.io/qos.iopsPerGiB', allowed: '1..50' },
    },
    {
      name: 'shipped "fast": a lower qos.iopsPerGiB tightens the scaled limit',
      templates: SHIPPED,
      params: { template: 'fast' },
      annotations: { 'datera.io/qos.iopsPerGiB': '10' },
      want: { qos: { total_iops_max: 1000, total_bandwidth_max: 512000 } },
    },
    {
      name: 'a per-GiB bandwidth above the template is refused',
      templates: LIMITS,
      params: { template: 'capped' },
      annotations: { 'datera.io/qos.bandwidthPerGiB': '101' },
      want: { error: 'template "capped" key qos.bandwidthPerGiB sets the limit 100', parameter: 'datera.io/qos.bandwidthPerGiB', allowed: '1..100' },
    },
    {
      name: 'a limit set by the StorageClass is a ceiling too, and the error names that parameter',
      templates: LIMITS,
      params: { template: 'open', total_iops_max: '3000' },
      annotations: { 'datera.io/qos.totalIopsMax': '4000' },
      want: { error: 'asks for 4000, but StorageClass "datera-sc" parameter "total_iops_max" sets the limit 3000; a claim may only tighten it: allowed 1..3000', parameter: 'datera.io/qos.totalIopsMax', allowed: '1..3000' },
    },
    {
      name: 'where no layer sets a limit, any override is a tightening and is sent',
      templates: LIMITS,
      params: { template: 'open' },
      annotations: { 'datera.io/qos.totalIopsMax': '9000', 'datera.io/qos.readIopsMax': '0' },
      want: { qos: { total_iops_max: 9000 } },
    },
    {
      name: 'qosOverrideMax lets a claim raise up to that value',
      templates: LIMITS,
      params: { template: 'raisable' },
      annotations: { 'datera.io/qos.totalIopsMax': '8000' },
      want: { qos: { total_iops_max: 8000, write_bandwidth_max: 1000 } },
    },
    {
      name: 'qosOverrideMax is the new ceiling, and the error names it',
      templates: LIMITS,
      params: { template: 'raisable' },
      annotations: { 'datera.io/qos.totalIopsMax': '8001' },
      want: { error: 'asks for 8001, but template "raisable" key qosOverrideMax.totalIopsMax lets claims ask for at most 8000; a claim may only tighten it: allowed 1..8000', parameter: 'datera.io/qos.totalIopsMax', allowed: '1..8000' },
    },
    {
      name: 'qosOverrideMax 0 lets a claim lift the limit entirely',
      templates: LIMITS,
      params: { template: 'raisable' },
      annotations: { 'datera.io/qos.writeBandwidthMax': '0' },
      want: { qos: { total_iops_max: 2000 } },
    },
    {
      name: 'a claim cannot set qosOverrideMax itself',
      templates: LIMITS,
      params: { template: 'capped' },
      annotations: { 'datera.io/qosOverrideMax.totalIopsMax': '0' },
      want: { error: 'claim annotation "datera.io/qosOverrideMax.totalIopsMax" is not an overridable key', parameter: 'datera.io/qosOverrideMax.totalIopsMax', allowed: 'qos.totalIopsMax' },
    },
  ];
  it('the shipped templates and the templates of this table parse', () => {
    if (!shipped.ok) expect.fail(shipped.errors.join('\n'));
    if (!limits.ok) expect.fail(limits.errors.join('\n'));
  });
  for (const row of rows) {
    it(row.name, () => {
      const r = appInstanceRequest(newInput({ params: row.params, annotations: row.annotations, templates: row.templates, request: 100n * Gi }));
      if ('error' in row.want) {
        if (r.ok) expect.fail(`accepted: ${JSON.stringify(r.volume.qos)}`);
        expect(r.error.message).to.include(row.want.error);
        expect(r.error.parameter).to.equal(row.want.parameter);
        expect(r.error.allowed).to.include(row.want.allowed);
      } else {
        if (!r.ok) expect.fail(r.error.message);
        expect(r.volume.qos).to.deep.equal(row.want.qos);
      }
    });
  }

  describe('parseTemplates: qosOverrideMax', () => {
    const cases: { name: string; yaml: string; errors: string[] }[] = [
      {
        name: 'a key claims may not override',
        yaml: 'templates:\n  - name: a\n    qos: { totalIopsMax: 10 }\n    qosOverrideMax: { totalIopsMax: 20 }\n    overridable: [replicas]\n',
        errors: ['template "a": qosOverrideMax.totalIopsMax has no effect: qos.totalIopsMax is not in overridable'],
      },
      {
        name: 'an unknown key',
        yaml: 'templates:\n  - name: a\n    qosOverrideMax: { totalIops: 20 }\n    overridable: [qos]\n',
        errors: ['template "a": unknown key qosOverrideMax.totalIops; allowed: qosOverrideMax.totalIopsMax, qosOverrideMax.readIopsMax'],
      },
      {
        name: 'a value out of range',
        yaml: 'templates:\n  - name: a\n    qosOverrideMax: { totalIopsMax: -1 }\n    overridable: [qos]\n',
        errors: ['template "a": qosOverrideMax.totalIopsMax must be an integer 0..10000000'],
      },
      {
        name: 'not a mapping',
        yaml: 'templates:\n  - name: a\n    qosOverrideMax: 5\n    overridable: [qos]\n',
        errors: ['template "a": qosOverrideMax must be a mapping of qos keys to the most a claim may ask for, got 5'],
      },
    ];
    for (const c of cases) {
      it(`refuses ${c.name}`, () => {
        const r = parseTemplates(c.yaml);
        if (r.ok) expect.fail('accepted');
        for (const e of c.errors) expect(r.errors.join('\n')).to.include(e);
      });
    }
    it('keeps the parsed ceilings on the template', () => {
      expect(LIMITS.templates.get('raisable')?.qosOverrideMax).to.deep.equal({ totalIopsMax: 8000, writeBandwidthMax: 0 });
      expect(LIMITS.templates.get('capped')).to.not.have.property('qosOverrideMax');
    });
  });
});

describe('provision/template: templates.yaml size and alias expansion are bounded', () => {
  /** `levels` lists, each holding `width` aliases of the one before: width^levels strings once expanded. */
  function laughs(levels: number, width: number): string {
    const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`];
    for (let i = 1; i <= levels; i++) lines.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(', ')}]`);
    return `${lines.join('\n')}\ntemplates:\n  - name: a\n    description: *l${levels}\n`;
  }

  it('a billion-laughs document (10^9 values) is refused with an error naming the alias expansion limit', () => {
    const r = parseTemplates(laughs(8, 10));
    if (r.ok) expect.fail('accepted');
    expect(r.errors).to.deep.equal([
      `templates.yaml holds more than ${TEMPLATES_MAX_NODES} values once its aliases (*name) are expanded; ` +
        'each alias counts as a full copy of what it names, so write the settings out or use fewer, smaller aliases',
    ]);
  });

  it('wide aliases of a wide list are refused the same way', () => {
    const r = parseTemplates(laughs(1, 5000));
    if (r.ok) expect.fail('accepted');
    expect(r.errors[0]).to.include(`more than ${TEMPLATES_MAX_NODES} values once its aliases`);
  });

  it('aliases that stay small (the documented <<: *base pattern) are accepted', () => {
    const r = parseTemplates('templates:\n  - &base\n    name: a\n    replicas: 2\n    qos: { totalIopsMax: 10 }\n  - <<: *base\n    name: b\n');
    if (!r.ok) expect.fail(r.errors.join('\n'));
    expect(r.set.templates.get('b')?.qos).to.deep.equal({ totalIopsMax: 10 });
  });

  it(`a document over ${TEMPLATES_MAX_BYTES} bytes is refused before parsing`, () => {
    const big = `templates: []\n${'# padding\n'.repeat(Math.ceil(TEMPLATES_MAX_BYTES / 10) + 1)}`;
    const r = parseTemplates(big);
    if (r.ok) expect.fail('accepted');
    expect(r.errors).to.deep.equal([`templates.yaml is larger than ${TEMPLATES_MAX_BYTES} bytes; split rarely used templates out or shorten the comments`]);
  });

  it(`a document of exactly ${TEMPLATES_MAX_BYTES} bytes is parsed`, () => {
    const head = 'templates: []\n';
    const r = parseTemplates(head + '#'.repeat(TEMPLATES_MAX_BYTES - head.length));
    if (!r.ok) expect.fail(r.errors.join('\n'));
  });
});
