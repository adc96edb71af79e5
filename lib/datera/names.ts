// SPDX-License-Identifier: Apache-2.0
// Datera naming: the name rule of the v2.1 schema, the tenant path form, and the names every
// driver gives the single storage instance and volume of an app instance. The provisioner
// (which writes these names), the node driver (which reads them back from PV options and must
// refuse anything else) and their specs import them from here, so the two sides cannot drift.

/** Name rule for app instances, storage instances, volumes, templates, IP pools, placement and snapshot policies. */
export const DATERA_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_\-.]{2,63}$/;
export const DATERA_NAME_RULE =
  'a Datera name (3-64 characters of letters, digits, "_", "-", ".", starting with a letter or "_")';

/** Tenant path as sent in the `tenant` header: "/root" or "/root/<Datera name>/...". */
export const TENANT_PATH_RE = /^\/root(?:\/[a-zA-Z_][a-zA-Z0-9_\-.]{2,63})*$/;
export const TENANT_PATH_RULE = 'a tenant path, "/root" or "/root/<name>" (e.g. "/root/team-a")';

/** Name of the one storage instance of every app instance the provisioner creates. */
export const STORAGE_INSTANCE_NAME = 'storage-1';
/** Name of the one volume in that storage instance. */
export const VOLUME_NAME = 'volume-1';
