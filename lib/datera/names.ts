// SPDX-License-Identifier: Apache-2.0
// Naming rules of the Datera API (v2.1 schema) that more than one part of the provisioner checks:
// the one place each rule is written, so that the settings and the StorageClass/AppTemplate
// parameters accept exactly the same values.

/**
 * A tenant path as sent in the `tenant` header: `/root`, or `/root` followed by sub-tenant names,
 * each a Datera name (3-64 letters, digits, `_`, `-`, `.`, starting with a letter or `_`) or a
 * lower-case UUID, as the schema's tenant `name` pattern allows.
 */
export const TENANT_PATH_RE =
  /^\/root(?:\/(?:[a-zA-Z_][a-zA-Z0-9_\-.]{2,63}|[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}))*$/;

/** TENANT_PATH_RE in words, for error messages ("must be ..."). */
export const TENANT_PATH_RULE = 'a tenant path, "/root" or "/root/<name>" (e.g. "/root/team-a")';
