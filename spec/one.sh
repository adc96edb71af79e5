#!/usr/bin/env bash
# Runs the given spec files only (the .mocharc.json glob would add every spec): spec/one.sh spec/e2e/provision.spec.ts
exec npx mocha --no-config --node-option import=tsx --timeout 20000 --reporter ./spec/support/summary-reporter.cjs "$@"
