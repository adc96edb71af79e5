// SPDX-License-Identifier: Apache-2.0
// The resize run's numbers mean what bench/README.md says: the per-claim phases and the repeated
// work come from the audit and call logs as described, set-up events are not counted, and the
// report's section shows medians over repetitions against the expected cost and the worst
// repetition's failures.
import { expect } from 'chai';
import type { AuditRecord } from '../../bench/lib/audit.js';
import { RESIZE_EXPECTED, eventsSince, perResize, resizePhases, resizeRepeats, type ResizeResult } from '../../bench/lib/resize.js';
import { markdown, resizeSection, type BenchResults } from '../../bench/report.js';

function rec(at: number, verb: string, resource: string, name: string, code = 200): AuditRecord {
  return { id: `${at}-${name}-${resource}`, user: 'ours', userAgent: '', namespace: 'ns', name, verb, resource, at, code };
}

describe('resize run: per-claim phases and repeated work', () => {
  it('splits each claim into patch → first status patch → PV patch → second status patch', () => {
    const records = [
      rec(1100, 'patch', 'persistentvolumeclaims/status', 'a'),
      rec(1500, 'patch', 'persistentvolumes', 'pv-a'),
      rec(1600, 'patch', 'persistentvolumeclaims/status', 'a'),
      rec(1200, 'create', 'events', 'a'),
    ];
    const p = resizePhases(records, new Map([['a', 1000]]), new Map([['a', 'pv-a']]));
    expect(p.toFirstStatus).to.deep.equal({ p50: 0.1, p90: 0.1, max: 0.1 });
    expect(p.toPvPatch).to.deep.equal({ p50: 0.4, p90: 0.4, max: 0.4 });
    expect(p.toSecondStatus).to.deep.equal({ p50: 0.1, p90: 0.1, max: 0.1 });
  });

  it('counts the most claims between their first and second accepted status patch at one time, ignoring refused patches', () => {
    const records = [
      rec(100, 'patch', 'persistentvolumeclaims/status', 'a'),
      rec(150, 'patch', 'persistentvolumeclaims/status', 'b'),
      rec(160, 'patch', 'persistentvolumeclaims/status', 'c', 409),
      rec(200, 'patch', 'persistentvolumeclaims/status', 'a'),
      rec(250, 'patch', 'persistentvolumeclaims/status', 'c'),
      rec(300, 'patch', 'persistentvolumeclaims/status', 'b'),
      rec(400, 'patch', 'persistentvolumeclaims/status', 'c'),
    ];
    const p = resizePhases(records, new Map([['a', 0], ['b', 0], ['c', 0]]), new Map());
    expect(p.maxInFlight).to.equal(2);
    expect(p.toFirstStatus.max).to.equal(0.25); // c's refused patch at 160 is not its first
  });

  it('leaves a claim out of the steps it never reached', () => {
    const p = resizePhases([rec(1300, 'patch', 'persistentvolumeclaims/status', 'a')], new Map([['a', 1000], ['b', 1000]]), new Map([['a', 'pv-a']]));
    expect(p.toFirstStatus.max).to.equal(0.3);
    expect(p.toPvPatch).to.deep.equal({ p50: 0, p90: 0, max: 0 });
  });

  it('counts claims with a third status patch, refused status patches, PVs patched twice and app instances whose metadata was read twice', () => {
    const records = [
      rec(1, 'patch', 'persistentvolumeclaims/status', 'a'),
      rec(3, 'patch', 'persistentvolumeclaims/status', 'a'),
      rec(4, 'patch', 'persistentvolumeclaims/status', 'a', 409),
      rec(1, 'patch', 'persistentvolumeclaims/status', 'b'),
      rec(2, 'patch', 'persistentvolumeclaims/status', 'b'),
      rec(2, 'patch', 'persistentvolumes', 'pv-a'),
      rec(5, 'patch', 'persistentvolumes', 'pv-a'),
      rec(2, 'patch', 'persistentvolumes', 'pv-b'),
    ];
    const meta = (ai: string) => ({ method: 'GET', route: '/app_instances/:id/metadata', path: `/v2.2/app_instances/${ai}/metadata` });
    const calls = [meta('pvc-a'), meta('pvc-a'), meta('pvc-b'), { method: 'GET', route: '/app_instances/:id', path: '/v2.2/app_instances/pvc-b' }];
    expect(resizeRepeats(records, calls)).to.deep.equal({ claimsWithExtraStatusPatches: 1, statusPatchesRefused: 1, pvsPatchedAgain: 1, appInstancesReadAgain: 1 });
  });

  it('divides counts by the number of resizes, keeping only the keys asked for', () => {
    expect(perResize({ 'patch persistentvolumes': 100, 'watch persistentvolumes': 2 }, 100, (k) => k.startsWith('patch'))).to.deep.equal({ 'patch persistentvolumes': 1 });
    expect(perResize({ 'GET /x': 3 }, 2)).to.deep.equal({ 'GET /x': 1.5 });
  });

  it('counts only the events that arrived after the set-up, by reason and component', () => {
    const before = { byReason: { ProvisioningSucceeded: 100 }, otherComponents: { 'persistentvolume-controller: ExternalProvisioning': 190 }, warnings: 0 };
    const after = { byReason: { ProvisioningSucceeded: 100, Resizing: 100, FileSystemResizeRequired: 100, VolumeResizeFailed: 2 }, otherComponents: { 'persistentvolume-controller: ExternalProvisioning': 190 }, warnings: 2 };
    expect(eventsSince(before, after)).to.deep.equal({ byReason: { Resizing: 100, FileSystemResizeRequired: 100, VolumeResizeFailed: 2 }, otherComponents: {}, warnings: 2 });
  });
});

function resizeRun(rep: number, o: Partial<ResizeResult>): ResizeResult {
  return {
    kind: 'ours',
    describe: 'ours',
    n: 100,
    rep,
    provisionerName: 'p',
    fromGiB: 1,
    toGiB: 2,
    templateYaml: '',
    expected: { kubeWrites: { ...RESIZE_EXPECTED.kubeWrites }, dateraCalls: { ...RESIZE_EXPECTED.dateraCalls }, events: { ...RESIZE_EXPECTED.events } },
    resized: 100,
    allResizedSec: 2,
    failures: { warningEvents: 0, infeasibleClaims: 0, errorConditions: 0, metricFailed: 0 },
    readBack: { checked: 100, sizeOk: 100, qosOk: 100, expectedIopsMax: 200 },
    ...o,
  };
}

const writes = (statusPatches: number) => ({ user: 'u', counts: {}, writesPerResize: { 'patch persistentvolumeclaims/status': statusPatches, 'patch persistentvolumes': 1, 'create events': 2 }, writesPerResizeTotal: statusPatches + 3, reads: 0, writesRejected: 0 });

describe('resize run: report section', () => {
  it('shows the median and range of the time to all resized over the repetitions', () => {
    const md = resizeSection([resizeRun(1, { allResizedSec: 3 }), resizeRun(2, { allResizedSec: 1 }), resizeRun(3, { allResizedSec: 2 })], 20).join('\n');
    expect(md).to.include('| first patch → all 100 resized (s) | 2.0 (1.0–3.0) |');
    expect(md).to.include('median of 3 repetitions');
    expect(md).to.include('| claims resized (controller part done) | 100/100 in every repetition |');
  });

  it('lists every expected request with its median per resize, and says which differ from expected', () => {
    const md = resizeSection([resizeRun(1, { kubeApi: writes(2) }), resizeRun(2, { kubeApi: writes(2.2) }), resizeRun(3, { kubeApi: writes(2.1) })], 20).join('\n');
    expect(md).to.include('| `patch persistentvolumeclaims/status` | 2 | 2.10 (2.00–2.20) |');
    expect(md).to.include('| `patch persistentvolumes` | 1 | 1.00 (1.00–1.00) |');
    expect(md).to.include('Differs from expected (median − expected, per resize): `patch persistentvolumeclaims/status` +0.10.');
    expect(md).not.to.match(/Differs from expected[^\n]*patch persistentvolumes`/);
  });

  it('counts a Datera route a repetition did not call as 0 there, and shows a route nobody expected', () => {
    const datera = (extra: number | undefined) => ({
      calls: { total: 0, byRoute: {}, logins: 0, faults: 0 },
      perResize: { ...RESIZE_EXPECTED.dateraCalls, ...(extra !== undefined ? { 'POST /login': extra } : {}) },
      perResizeTotal: 4,
    });
    const md = resizeSection([resizeRun(1, { datera: datera(0.5) }), resizeRun(2, { datera: datera(undefined) }), resizeRun(3, { datera: datera(0.25) })], 20).join('\n');
    expect(md).to.include('| `POST /login` | 0 | 0.25 (0.00–0.50) |');
  });

  it('shows the worst repetition\'s failures and read-back, and which repetitions did not finish', () => {
    const md = resizeSection([
      resizeRun(1, {}),
      resizeRun(2, { resized: 97, failures: { warningEvents: 3, infeasibleClaims: 1, errorConditions: 2, metricFailed: 3 }, readBack: { checked: 100, sizeOk: 98, qosOk: 97, expectedIopsMax: 200 } }),
    ], 20).join('\n');
    expect(md).to.match(/\| failures: [^|]*\| 3 \/ 1 \/ 2 \/ 3 \|/);
    expect(md).to.include('| read back from the simulator: volumes at 2Gi / with total_iops_max 200 (worst repetition) | 98 / 97 of 100 |');
    expect(md).to.include('| claims resized (controller part done) | 100/100; 97/100 |');
  });

  it('is part of the report only for results with a resize run', () => {
    const base = { label: 'x', runId: 'x', startedAt: '', finishedAt: '', durationSec: 0, machine: { nproc: 2, cpuModel: '', memGiB: 1, kernel: '', node: '', go: '', loadavgStart: [], loadavgEnd: [], kubernetes: '' }, git: { commit: 'c', libChanges: [] }, settings: { latencyMs: 20, concurrency: 32, kcm: { kcmQps: 1, kcmBurst: 1, pvSyncPeriod: '1s' }, apiserver: '', oursMode: 'dist', contenders: {}, peerTuning: { qps: 1, burst: 1, threads: 1 } }, bursts: [] } as BenchResults;
    expect(markdown(base, 'x.svg')).not.to.include('## Resize');
    expect(markdown({ ...base, resize: [resizeRun(1, {})] }, 'x.svg')).to.include('## Resize: 100 claims grown at once (ours only)');
  });
});
