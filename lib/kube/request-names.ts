// SPDX-License-Identifier: Apache-2.0
// The verb and resource of a Kubernetes REST request, as client-go names them in its metrics
// (kubernetes_api_requests_total{verb,resource}).

/**
 * client-go style verb and resource of a REST request, e.g. GET
 * /api/v1/namespaces/ns/persistentvolumeclaims -> { verb: 'list', resource: 'persistentvolumeclaims' }.
 * Subresources are appended: 'persistentvolumeclaims/status'.
 */
export function describeRequest(method: string, url: string): { verb: string; resource: string } {
  let u: URL;
  try {
    u = new URL(url, 'http://x');
  } catch {
    return { verb: method.toLowerCase(), resource: 'unknown' };
  }
  const parts = u.pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/group/version/...
  let rest: string[];
  if (parts[0] === 'api') rest = parts.slice(2);
  else if (parts[0] === 'apis') rest = parts.slice(3);
  else rest = parts;
  let resource: string | undefined;
  let name: string | undefined;
  let sub: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    [, , resource, name, sub] = rest;
    if (rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize')) {
      // subresource of the namespace itself
      [resource, name, sub] = ['namespaces', rest[1], rest[2]];
    }
  } else {
    [resource, name, sub] = rest;
  }
  const m = method.toUpperCase();
  let verb: string;
  switch (m) {
    case 'GET':
      verb = u.searchParams.get('watch') === 'true' ? 'watch' : name ? 'get' : 'list';
      break;
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = name ? 'delete' : 'deletecollection';
      break;
    default:
      verb = m.toLowerCase();
  }
  return { verb, resource: (resource ?? 'unknown') + (sub ? `/${sub}` : '') };
}
