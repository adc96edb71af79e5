'use strict';
// Mocha's spec reporter plus the closing line CI reads: "N passed, N failed".
const { reporters: { Spec }, Runner: { constants: { EVENT_RUN_END } } } = require('mocha');

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
    });
  }
}
module.exports = SummaryReporter;
