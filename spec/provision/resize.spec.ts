// SPDX-License-Identifier: Apache-2.0
// Volume expansion decisions (lib/provision/resize.ts): which claims need the resizer, grow-only,
// the class's allowVolumeExpansion, the template's maxSize, per-GiB QoS at the new size, and the
// claim status patches kubelet reads.
import { expect } from 'chai';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { parseTemplates, type TemplateSet } from '../../lib/provision/app-templates.js';
import {
  FS_RESIZE_PENDING_MESSAGE,
  alreadyRefused,
  claimMayNeedResize,
  decideResize,
  resizeStatusPatch,
  sameQos,
  type ResizeDecision,
} from '../../lib/provision/resize.js';
import { newClaim, newStorageClass, newVolume } from '../support/builders.js';

const TEMPLATES = `
templates:
  - name: fixed
    replicas: 2
    maxSize: 20Gi
    qos: { totalIopsMax: 5000 }
  - name: pergib
    replicas: 2
    qos: { iopsPerGiB: 100, totalIopsMax: 3000, bandwidthPerGiB: 1024 }
`;

function templates(): TemplateSet {
  const r = parseTemplates(TEMPLATES);
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.set;
}

function bound(o: { request: string; capacity: string; status?: string; allocated?: string; conditions?: { type: string; message?: string }[] }): V1PersistentVolumeClaim {
  const c = newClaim('data', { className: 'gold', size: o.request, volumeName: 'pvc-uid-data' });
  c.status = {
    phase: 'Bound',
    capacity: { storage: o.capacity },
    ...(o.status ? { allocatedResourceStatuses: { storage: o.status } } : {}),
    ...(o.allocated ? { allocatedResources: { storage: o.allocated } } : {}),
    ...(o.conditions ? { conditions: o.conditions.map((x) => ({ ...x, status: 'True' })) } : {}),
  };
  return c;
}

function pvOf(capacity: string): V1PersistentVolume {
  const pv = newVolume('pvc-uid-data');
  pv.spec!.capacity = { storage: capacity };
  return pv;
}

function expandable(template: string | undefined, ...allowed: [boolean | undefined] | []): V1StorageClass {
  const allow = allowed.length === 0 ? true : allowed[0];
  const sc = newStorageClass('gold', { parameters: template ? { template } : {} });
  if (allow !== undefined) sc.allowVolumeExpansion = allow;
  return sc;
}

function decide(claim: V1PersistentVolumeClaim, pv: V1PersistentVolume, sc: V1StorageClass | undefined): ResizeDecision {
  return decideResize({ claim, pv, storageClass: sc, className: 'gold', templates: templates() });
}

describe('volume expansion decisions', () => {
  describe('claimMayNeedResize (the informer filter)', () => {
    const rows: [string, V1PersistentVolumeClaim, boolean][] = [
      ['bound, request above capacity', bound({ request: '2Gi', capacity: '1Gi' }), true],
      ['bound, request equal to capacity', bound({ request: '1Gi', capacity: '1Gi' }), false],
      ['bound, request below capacity (rounded up earlier)', bound({ request: '500Mi', capacity: '1Gi' }), false],
      ['our attempt in progress, request back to capacity', bound({ request: '1Gi', capacity: '1Gi', status: 'ControllerResizeInProgress' }), true],
      ['refused earlier', bound({ request: '1Gi', capacity: '1Gi', status: 'ControllerResizeInfeasible' }), true],
      ['pending claim with no capacity', newClaim('p', { size: '5Gi' }), false],
    ];
    for (const [what, claim, want] of rows) {
      it(`${what}: ${want}`, () => {
        expect(claimMayNeedResize(claim)).to.equal(want);
      });
    }
  });

  describe('decideResize', () => {
    it('grows to the request rounded up to whole GiB, with the class limits at the new and the current size', () => {
      const d = decide(bound({ request: '4500Mi', capacity: '1Gi' }), pvOf('1Gi'), expandable('fixed'));
      expect(d).to.deep.equal({ action: 'expand', targetGiB: 5, currentGiB: 1, qos: { total_iops_max: 5000 }, qosBefore: { total_iops_max: 5000 } });
    });

    it('recomputes per-GiB QoS for the new size (capped by the absolute limit)', () => {
      const d = decide(bound({ request: '10Gi', capacity: '2Gi' }), pvOf('2Gi'), expandable('pergib'));
      expect(d).to.deep.include({ action: 'expand', targetGiB: 10, currentGiB: 2 });
      expect((d as { qos: object }).qos).to.deep.equal({ total_iops_max: 1000, total_bandwidth_max: 10240 });
      expect((d as { qosBefore: object }).qosBefore).to.deep.equal({ total_iops_max: 200, total_bandwidth_max: 2048 });
      const big = decide(bound({ request: '40Gi', capacity: '2Gi' }), pvOf('2Gi'), expandable('pergib'));
      expect((big as { qos: { total_iops_max: number } }).qos.total_iops_max).to.equal(3000);
    });

    it('refuses a class without allowVolumeExpansion, naming the class and the setting', () => {
      for (const allow of [false, undefined]) {
        const d = decide(bound({ request: '2Gi', capacity: '1Gi' }), pvOf('1Gi'), expandable(undefined, allow));
        expect(d).to.include({ action: 'refuse', reason: 'NotAllowed' });
        expect((d as { message: string }).message).to.include('StorageClass "gold" does not allow volume expansion').and.include('allowVolumeExpansion: true');
      }
    });

    it('refuses when the class is gone', () => {
      const d = decide(bound({ request: '2Gi', capacity: '1Gi' }), pvOf('1Gi'), undefined);
      expect(d).to.include({ action: 'refuse', reason: 'NotAllowed' });
      expect((d as { message: string }).message).to.include('StorageClass "gold" of volume pvc-uid-data does not exist');
    });

    it('refuses a size above the template maxSize, naming the limit and the allowed range', () => {
      const d = decide(bound({ request: '25Gi', capacity: '1Gi' }), pvOf('1Gi'), expandable('fixed'));
      expect(d).to.include({ action: 'refuse', reason: 'InvalidSize' });
      expect((d as { message: string }).message).to.include('above maxSize 20Gi of template "fixed"').and.include('to 25Gi');
    });

    it('refuses a size above the Datera maximum of 32768 GiB', () => {
      const d = decide(bound({ request: '40Ti', capacity: '1Gi' }), pvOf('1Gi'), expandable(undefined));
      expect(d).to.include({ action: 'refuse', reason: 'InvalidSize' });
      expect((d as { message: string }).message).to.include('above the Datera maximum of 32768Gi');
    });

    it('refuses to shrink: a request below what the PV already has', () => {
      const d = decide(bound({ request: '5Gi', capacity: '2Gi', status: 'ControllerResizeInProgress' }), pvOf('8Gi'), expandable('fixed'));
      expect(d).to.include({ action: 'refuse', reason: 'Shrink' });
      expect((d as { message: string }).message).to.include('already 8Gi and Datera volumes cannot shrink').and.include('ask for 8Gi or more');
    });

    it('does nothing when the claim asks for no more than its capacity', () => {
      expect(decide(bound({ request: '1Gi', capacity: '1Gi' }), pvOf('1Gi'), expandable('fixed'))).to.deep.equal({ action: 'none' });
    });

    it("leaves a volume waiting for kubelet alone (NodeResizePending, PV already grown)", () => {
      const claim = bound({ request: '5Gi', capacity: '1Gi', status: 'NodeResizePending', allocated: '5Gi' });
      expect(decide(claim, pvOf('5Gi'), expandable('fixed'))).to.deep.equal({ action: 'none' });
    });

    it('NodeResizePending at the size asked is done even while the cached PV still shows the old capacity (our PV patch not yet seen)', () => {
      const claim = bound({ request: '5Gi', capacity: '1Gi', status: 'NodeResizePending', allocated: '5Gi' });
      expect(decide(claim, pvOf('1Gi'), expandable('fixed'))).to.deep.equal({ action: 'none' });
      // A larger request than the one marked for the node is a new resize.
      const more = bound({ request: '8Gi', capacity: '1Gi', status: 'NodeResizePending', allocated: '5Gi' });
      expect(decide(more, pvOf('5Gi'), expandable('fixed'))).to.deep.include({ action: 'expand', targetGiB: 8 });
    });

    it('finishes a resize whose last status patch was lost (PV grown, no status): expand again, which the storage makes a no-op', () => {
      const d = decide(bound({ request: '5Gi', capacity: '1Gi' }), pvOf('5Gi'), expandable('fixed'));
      expect(d).to.deep.include({ action: 'expand', targetGiB: 5, currentGiB: 5 });
    });

    it('clears our status when the request went back to the capacity (and only if the PV was not grown)', () => {
      const claim = bound({ request: '1Gi', capacity: '1Gi', status: 'ControllerResizeInfeasible' });
      expect(decide(claim, pvOf('1Gi'), expandable('fixed'))).to.deep.equal({ action: 'clear' });
      expect(decide(claim, pvOf('3Gi'), expandable('fixed'))).to.deep.equal({ action: 'none' });
    });

    it('a Datera-side template: grow only, no QoS of ours', () => {
      const d = decide(bound({ request: '3Gi', capacity: '1Gi' }), pvOf('1Gi'), newStorageClass('gold', { parameters: { datera_template: 'dtx' } }));
      expect(d).to.deep.equal({ action: 'refuse', reason: 'NotAllowed', message: (d as { message: string }).message });
      const sc = newStorageClass('gold', { parameters: { datera_template: 'dtx' } });
      sc.allowVolumeExpansion = true;
      expect(decide(bound({ request: '3Gi', capacity: '1Gi' }), pvOf('1Gi'), sc)).to.deep.equal({ action: 'expand', targetGiB: 3, currentGiB: 1 });
    });
  });

  describe('claim status patches', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    it('in progress: allocatedResources, ControllerResizeInProgress, Resizing; other conditions kept; resourceVersion for a 409 on a changed claim', () => {
      const c = bound({ request: '5Gi', capacity: '1Gi', conditions: [{ type: 'ModifyingVolume' }, { type: 'ControllerResizeError', message: 'old' }] });
      c.metadata!.resourceVersion = '42';
      const p = resizeStatusPatch(c, { kind: 'inProgress', sizeGiB: 5 }, now) as { metadata: object; status: { allocatedResources: object; allocatedResourceStatuses: object; conditions: { type: string }[] } };
      expect(p.metadata).to.deep.equal({ resourceVersion: '42' });
      expect(p.status.allocatedResources).to.deep.equal({ storage: '5Gi' });
      expect(p.status.allocatedResourceStatuses).to.deep.equal({ storage: 'ControllerResizeInProgress' });
      expect(p.status.conditions.map((x) => x.type)).to.deep.equal(['ModifyingVolume', 'Resizing']);
    });

    it('node pending: NodeResizePending and FileSystemResizePending with the message kubelet users know', () => {
      const p = resizeStatusPatch(bound({ request: '5Gi', capacity: '1Gi' }), { kind: 'nodePending', sizeGiB: 5 }, now) as { status: { allocatedResourceStatuses: object; conditions: { type: string; message: string }[] } };
      expect(p.status.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
      expect(p.status.conditions).to.have.length(1);
      expect(p.status.conditions[0]).to.include({ type: 'FileSystemResizePending', status: 'True', message: FS_RESIZE_PENDING_MESSAGE });
    });

    it('clear: removes the storage keys (null) and the resize conditions only', () => {
      const c = bound({ request: '1Gi', capacity: '1Gi', status: 'ControllerResizeInfeasible', conditions: [{ type: 'ControllerResizeError', message: 'x' }, { type: 'Other' }] });
      const p = resizeStatusPatch(c, { kind: 'clear' }, now) as { status: { allocatedResources: object; allocatedResourceStatuses: object; conditions: { type: string }[] } };
      expect(p.status.allocatedResources).to.deep.equal({ storage: null });
      expect(p.status.allocatedResourceStatuses).to.deep.equal({ storage: null });
      expect(p.status.conditions.map((x) => x.type)).to.deep.equal(['Other']);
    });

    it('alreadyRefused: only the same message under ControllerResizeInfeasible', () => {
      const c = bound({ request: '9Gi', capacity: '1Gi', status: 'ControllerResizeInfeasible', conditions: [{ type: 'ControllerResizeError', message: 'm1' }] });
      expect(alreadyRefused(c, 'm1')).to.equal(true);
      expect(alreadyRefused(c, 'm2')).to.equal(false);
      expect(alreadyRefused(bound({ request: '9Gi', capacity: '1Gi', conditions: [{ type: 'ControllerResizeError', message: 'm1' }] }), 'm1')).to.equal(false);
    });
  });

  it('a class-less (legacy) PV is refused: a claim annotation naming an expandable class cannot decide it', () => {
    const claim = bound({ request: '2Gi', capacity: '1Gi' });
    claim.metadata!.annotations = { ...claim.metadata!.annotations, 'volume.beta.kubernetes.io/storage-class': 'gold' };
    const legacy = pvOf('1Gi');
    legacy.spec!.storageClassName = '';
    const d = decideResize({ claim, pv: legacy, storageClass: expandable('fixed'), className: '', templates: templates() });
    expect(d).to.include({ action: 'refuse', reason: 'NotAllowed' });
    expect((d as { message: string }).message).to.include('has no StorageClass');
  });

  it('sameQos: absent keys are 0 (unlimited)', () => {
    expect(sameQos({ total_iops_max: 5 }, { total_iops_max: 5, read_iops_max: 0 })).to.equal(true);
    expect(sameQos({ total_iops_max: 5 }, { total_iops_max: 6 })).to.equal(false);
    expect(sameQos(undefined, {})).to.equal(true);
  });
});
