// SPDX-License-Identifier: Apache-2.0
// Datera naming: the name rule of the v2.1 schema, the tenant path form, and the names every
// driver gives the single storage instance and volume of an app instance. The settings, the
// StorageClass/AppTemplate parameters, the provisioner (which writes these names) and the node
// driver (which reads them back from PV options and must refuse anything else) import them from
// here, so they accept exactly the same values.

/** Name rule for app instances, storage instances, volumes, templates, IP pools, placement and snapshot policies. */
export const DATERA_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_\-.]{2,63}$/;
export const DATERA_NAME_RULE =
  'a Datera name (3-64 characters of letters, digits, "_", "-", ".", starting with a letter or "_")';

/**
 * A tenant path as sent in the `tenant` header: `/root`, or `/root` followed by sub-tenant names,
 * each a Datera name or a lower-case UUID, as the schema's tenant `name` pattern allows.
 */
export const TENANT_PATH_RE =
  /^\/root(?:\/(?:[a-zA-Z_][a-zA-Z0-9_\-.]{2,63}|[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}))*$/;

/** TENANT_PATH_RE in words, for error messages ("must be ..."). */
export const TENANT_PATH_RULE = 'a tenant path, "/root" or "/root/<name>" (e.g. "/root/team-a")';

/** Name of the one storage instance of every app instance the provisioner creates. */
export const STORAGE_INSTANCE_NAME = 'storage-1';
/** Name of the one volume in that storage instance. */
export const VOLUME_NAME = 'volume-1';
