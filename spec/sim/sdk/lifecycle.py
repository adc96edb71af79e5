# SPDX-License-Identifier: Apache-2.0
# Drives the Datera simulator with Datera's own Python SDK (dfs-sdk), through the lifecycle the
# provisioner and the node driver use. Run by spec/sim/python-sdk.spec.ts in the virtualenv that
# spec/sim/sdk/pyenv.ts prepares:
#
#   python lifecycle.py <sim base url> <api version> <app template name>
#
# Prints one JSON object per line, one per step: {"step", "ok": true, "value"} or
# {"step", "ok": false, "error", "type"}. A failing step does not stop the run; the steps after it
# report their own result (or that what they need is missing). Exit status 0 even when steps fail:
# the spec judges the steps. Nothing secret is printed (the session key never is).
#
# The SDK is used as shipped, with two things set from outside it: the port (dfs-sdk hard-codes
# 7717/7718 in dfs_sdk.connection.REST_PORT/_HTTPS; a simulator on 7717 needs nothing), and the
# schema cache file (schema_loc, default /tmp/.cached-schema), pointed into the working directory
# so that every run fetches /api from the simulator under test.
import json
import os
import sys
import traceback
import urllib.request
from urllib.parse import urlparse

import dfs_sdk
from dfs_sdk import connection as sdk_connection

BASE, VERSION, TEMPLATE = sys.argv[1], sys.argv[2], sys.argv[3]
url = urlparse(BASE)
sdk_connection.REST_PORT = url.port
SUFFIX = VERSION.replace('.', '')
INITIATOR = 'iqn.1993-08.org.debian:01:sdk' + SUFFIX


def emit(record):
    sys.stdout.write(json.dumps(record, sort_keys=True, default=str) + '\n')
    sys.stdout.flush()


state = {}


def step(name, *needs):
    """Runs fn as step `name`; its return value is reported (JSON-able) and kept in state[name]."""
    def wrap(fn):
        missing = [n for n in needs if n not in state]
        if missing:
            emit({'step': name, 'ok': False, 'type': 'Skipped',
                  'error': 'needs the result of step(s) ' + ', '.join(missing)})
            return fn
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 - every failure is the step's result
            emit({'step': name, 'ok': False, 'type': type(e).__name__,
                  'error': str(e)[:2000], 'where': traceback.format_exc(limit=6)[-3000:]})
            return fn
        state[name] = value
        emit({'step': name, 'ok': True, 'value': value.get('report') if isinstance(value, dict) and 'report' in value else value})
        return fn
    return wrap


def control(method, path):
    """Calls the simulator's /_sim/ control endpoint (not part of the Datera API)."""
    req = urllib.request.Request(BASE + path, method=method, data=b'' if method == 'POST' else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b'null')


def plain(value):
    """SDK entities are Mappings: the JSON-able data behind them."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, 'items') and hasattr(value, 'keys'):
        return {k: plain(v) for k, v in value.items()}
    return value


@step('login')
def _():
    api = dfs_sdk.get_api(url.hostname, 'admin', 'password', VERSION, tenant='/root',
                          strict=False, secure=False, schema_loc=os.path.abspath('cached-schema.json'))
    conn = api.context.connection
    reader = conn.reader
    return {'api': api, 'report': {
        'product_version': conn._product_version,
        'logged_in': conn._logged_in,
        'schema_routes': len(reader.schema),
        'knows_metrics_enum': 'iops_read' in reader._ep_name_set,
    }}


def api():
    return state['login']['api']


@step('strict_endpoints', 'login')
def _():
    # strict=True (the SDK's default) allows only endpoints the /api schema names.
    strict = dfs_sdk.get_api(url.hostname, 'admin', 'password', VERSION, tenant='/root',
                             strict=True, secure=False, schema_loc=os.path.abspath('cached-schema.json'))
    out = {
        'storage_nodes': len(strict.storage_nodes.list()),
        'app_templates': len(strict.app_templates.list()),
        'initiators': len(strict.initiators.list()),
    }
    if VERSION == 'v2.2':
        out['placement_policies'] = sorted(p['name'] for p in strict.placement_policies.list())
    try:
        strict.no_such_endpoint
        out['unknown_endpoint'] = 'allowed'
    except dfs_sdk.exceptions.SdkEndpointNotFound:
        out['unknown_endpoint'] = 'SdkEndpointNotFound'
    return out


@step('system', 'login')
def _():
    s = api().system.get()
    return {'sw_version': s['sw_version'], 'op_state': s['op_state'], 'name': s.get('name')}


@step('templates_list', 'login')
def _():
    return {'names': sorted(t['name'] for t in api().app_templates.list())}


@step('ai_create', 'login')
def _():
    ai = api().app_instances.create(
        name='sdk-ai-' + SUFFIX,
        storage_instances=[{
            'name': 'storage-1',
            'volumes': [{
                'name': 'volume-1', 'size': 3, 'replica_count': 2, 'placement_mode': 'hybrid',
                'performance_policy': {'total_iops_max': 1000, 'total_bandwidth_max': 102400},
            }],
        }],
    )
    vol = ai['storage_instances'][0]['volumes'][0]
    return {'ai': ai, 'report': {
        'name': ai['name'], 'id': ai['id'], 'admin_state': ai['admin_state'],
        'path': ai._path, 'volume_size': vol['size'], 'replica_count': vol['replica_count'],
    }}


@step('ai_create_template', 'login')
def _():
    ai = api().app_instances.create(
        name='sdk-tpl-' + SUFFIX,
        app_template={'path': '/app_templates/' + TEMPLATE},
        template_override={'storage_instances': {'storage-1': {'volumes': {'volume-1': {'size': '7'}}}}},
    )
    vol = ai['storage_instances'][0]['volumes'][0]
    return {'ai': ai, 'report': {
        'name': ai['name'], 'app_template': ai['app_template'].get('path'), 'volume_size': vol['size'],
    }}


@step('ai_list', 'ai_create', 'ai_create_template')
def _():
    return {'names': sorted(ai['name'] for ai in api().app_instances.list())}


@step('ai_get', 'ai_create')
def _():
    created = state['ai_create']['ai']
    by_id = api().app_instances.get(created['id'])
    by_name = api().app_instances.get(created['name'])
    return {'ai': by_id, 'report': {'id': by_id['id'], 'name': by_id['name'], 'by_name_id': by_name['id']}}


def the_ai():
    return state['ai_get']['ai']


@step('metadata_set', 'ai_get')
def _():
    # The SDK picks /int_ecosystem_data (body {"data": {...}}) on product 3.3.0.0 and later.
    res = the_ai().metadata.set(**{'k8s/pv': 'pvc-' + SUFFIX, 'owner': 'sdk'})
    return {'endpoint': the_ai().metadata._name, 'answer': plain(res)}


@step('metadata_get', 'metadata_set')
def _():
    return {'endpoint': the_ai().metadata._name, 'data': plain(the_ai().metadata.get())}


@step('metadata_legacy_endpoint', 'metadata_set')
def _():
    # The Go SDK and the CSI driver use /app_instances/:id/metadata; same store on a cluster.
    conn = api().context.connection
    path = the_ai()._path + '/metadata'
    before = plain(conn.read_entity(path))
    conn.update_endpoint(path, {'csi': 'go-sdk'})
    after = plain(the_ai().metadata.get())
    return {'read_via_metadata': before, 'ecosystem_after_metadata_put': after}


@step('si_read', 'ai_get')
def _():
    sis = the_ai().storage_instances.list()
    si = the_ai().storage_instances.get('storage-1')
    return {'si': si, 'report': {
        'count': len(sis), 'name': si['name'], 'iqn': si['access']['iqn'], 'ips': si['access']['ips'],
        'op_state': si['op_state'], 'path': si._path,
    }}


@step('si_metadata', 'si_read')
def _():
    si = state['si_read']['si']
    si.metadata.set(lun='0')
    return {'endpoint': si.metadata._name, 'data': plain(si.metadata.get())}


@step('volume_resize', 'si_read')
def _():
    vol = state['si_read']['si'].volumes.get('volume-1')
    updated = vol.set(size=5)
    again = state['si_read']['si'].volumes.get('volume-1')
    return {'vol': again, 'report': {'before': vol['size'], 'answer': updated['size'], 'read_back': again['size']}}


@step('performance_policy', 'volume_resize')
def _():
    vol = state['volume_resize']['vol']
    before = plain(vol.performance_policy.get())
    vol.performance_policy.set(total_iops_max=2000, total_bandwidth_max=204800)
    after = plain(vol.performance_policy.get())
    return {'before': before, 'after': after}


@step('initiator_create', 'login')
def _():
    ini = api().initiators.create(name='sdk-node-' + SUFFIX, id=INITIATOR, force=False)
    return {'ini': ini, 'report': {'id': ini['id'], 'name': ini['name'], 'path': ini._path}}


@step('acl_add', 'si_read', 'initiator_create')
def _():
    res = state['si_read']['si'].acl_policy.initiators.add(state['initiator_create']['ini'])
    return plain(res)


@step('acl_read', 'acl_add')
def _():
    acl = state['si_read']['si'].acl_policy.get()
    return {'initiators': [i['path'] for i in acl['initiators']]}


@step('acl_remove', 'acl_read')
def _():
    state['si_read']['si'].acl_policy.initiators.remove(state['initiator_create']['ini'])
    acl = state['si_read']['si'].acl_policy.get()
    return {'initiators': [i['path'] for i in acl['initiators']]}


@step('session_expiry', 'ai_get')
def _():
    # Every key becomes invalid; the SDK's next call gets 401 with the cluster's message,
    # logs in again and repeats the call.
    control('POST', '/_sim/expire-sessions')
    ai = api().app_instances.get(the_ai()['id'])
    return {'name_after_relogin': ai['name'], 'logged_in': api().context.connection._logged_in}


@step('offline', 'ai_get')
def _():
    ai = the_ai().set(admin_state='offline', force=True)
    si = the_ai().storage_instances.get('storage-1')
    return {'admin_state': ai['admin_state'], 'si_op_state': si['op_state']}


def delete_and_confirm(ai):
    deleted = ai.delete()
    try:
        api().app_instances.get(ai['id'])
        gone = 'still readable'
    except dfs_sdk.ApiNotFoundError:
        gone = 'ApiNotFoundError'
    return {'deleted': deleted['name'], 'read_after': gone}


@step('delete', 'offline')
def _():
    return delete_and_confirm(the_ai())


@step('delete_template_ai', 'ai_create_template')
def _():
    ai = state['ai_create_template']['ai']
    ai.set(admin_state='offline')
    return delete_and_confirm(ai)


@step('ai_list_after', 'delete', 'delete_template_ai')
def _():
    return {'names': sorted(ai['name'] for ai in api().app_instances.list())}
