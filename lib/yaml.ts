// SPDX-License-Identifier: Apache-2.0
// YAML documents the admin writes (the config file, the AppTemplates ConfigMap) as plain data.
// js-yaml directly, not client-node's loadYaml: that one also runs each document through the
// generated model serialiser, which pulls all ~700 generated models into the process (and
// into the bundle) to convert Kubernetes objects, which these documents are not.
import { load } from 'js-yaml';

/**
 * One YAML document as plain data (the default schema: no custom tags, no code). Throws js-yaml's
 * YAMLException (with `reason` and `mark`) on a syntax error, and `Failed to load YAML` for an
 * empty document or one that is only `null`, `false`, `0` or `""`, as client-node's loadYaml did.
 */
export function parseYaml(text: string): unknown {
  const doc = load(text);
  if (!doc) throw new Error('Failed to load YAML');
  return doc;
}
