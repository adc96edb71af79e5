// SPDX-License-Identifier: Apache-2.0
// Loaded (NODE_OPTIONS=--require) only by `make mutation`. @stryker-mutator/mocha-runner 9.x,
// the last line that runs on Node 20, requires mocha's CLI helpers without an extension
// (`mocha/lib/cli/run-helpers`); mocha 12 ships them as `.cjs` with the same exports. This maps
// those extension-less requests to the `.cjs` files and changes nothing else.
'use strict';
const Module = require('node:module');
const fs = require('node:fs');

const original = Module._resolveFilename;
Module._resolveFilename = function resolveMochaCjs(request, ...rest) {
  if (/[\\/]mocha[\\/]lib[\\/]cli[\\/][a-z-]+$/.test(request) && fs.existsSync(`${request}.cjs`)) {
    return original.call(this, `${request}.cjs`, ...rest);
  }
  return original.call(this, request, ...rest);
};
