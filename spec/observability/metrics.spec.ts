// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { sourceLabel } from '../../lib/observability/metrics.js';

describe('observability/metrics: sourceLabel', () => {
  const rows: [string | undefined, string][] = [
    [undefined, ''],
    ['', ''],
    ['PersistentVolumeClaim', 'PersistentVolumeClaim'],
    ['VolumeSnapshot', 'other'],
    ['persistentvolumeclaim', 'other'],
    ['x'.repeat(300), 'other'],
  ];
  for (const [kind, want] of rows) {
    it(`maps ${kind === undefined ? 'no data source' : JSON.stringify(kind.slice(0, 24))} to ${JSON.stringify(want)}`, () => {
      expect(sourceLabel(kind)).to.equal(want);
    });
  }
});
