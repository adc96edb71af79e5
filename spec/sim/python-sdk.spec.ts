// SPDX-License-Identifier: Apache-2.0
// The simulator driven by a client nobody here wrote: Datera's Python SDK (dfs-sdk 1.2.27 from
// PyPI) in a cached virtualenv (spec/sim/sdk/pyenv.ts), running spec/sim/sdk/lifecycle.py, the
// lifecycle the provisioner and the node driver use, once per API version. Each step is its own
// test, so a failure names the step and carries the SDK's error.
//
// Skipped (with the reason printed) only when the machine cannot have the venv: no python3, no
// venv module that can be installed, or PyPI unreachable. DATERA_SDK_TIER=require makes those
// failures. Alone: `spec/one.sh spec/sim/python-sdk.spec.ts`.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppTemplate } from '../../lib/datera/types.js';
import { DateraSimulator, type SimCall } from '../../lib/sim/server.js';
import { SDK_VERSION, sdkPython } from './sdk/pyenv.js';

const SCRIPT = fileURLToPath(new URL('./sdk/lifecycle.py', import.meta.url));

const TEMPLATE: AppTemplate = {
  name: 'sdk-template',
  storage_templates: [
    {
      name: 'storage-1',
      volume_templates: [
        { name: 'volume-1', size: 16, replica_count: 3, placement_mode: 'hybrid', performance_policy: { total_iops_max: 5000 } },
      ],
    },
  ],
};

interface StepRecord {
  step: string;
  ok: boolean;
  value?: any; // the script's JSON report of the step
  type?: string;
  error?: string;
  where?: string;
}

interface Outcome {
  steps: Map<string, StepRecord>;
  calls: SimCall[];
}

/** Runs lifecycle.py against the simulator; rejects when the script itself cannot run. */
function runLifecycle(python: string, base: string, version: string, cwd: string): Promise<Map<string, StepRecord>> {
  const env = {
    ...process.env,
    DSDK_LOG_CFG: 'disable', // the SDK would otherwise write dsdk_*.log files into cwd
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  return new Promise((resolve, reject) => {
    execFile(python, [SCRIPT, base, version, TEMPLATE.name], { cwd, env, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`lifecycle.py ${version} did not finish: ${err.message}\n${stderr.slice(-2000)}`));
        return;
      }
      const steps = new Map<string, StepRecord>();
      for (const line of stdout.split('\n')) {
        if (!line.trim()) continue;
        const rec = JSON.parse(line) as StepRecord;
        steps.set(rec.step, rec);
      }
      resolve(steps);
    });
  });
}

describe(`simulator: Datera's Python SDK (dfs-sdk ${SDK_VERSION}) through the provisioner's lifecycle`, function () {
  let python = '';
  let sim: DateraSimulator | undefined;
  let base = '';
  let work = '';

  before(async function () {
    this.timeout(900_000); // a cold venv: pip install from PyPI (about 15 s here)
    const env = await sdkPython();
    if ('skip' in env) {
      // No python3, no venv, or no PyPI on this machine: nothing to drive the simulator with.
      console.warn(`    skipped: ${env.skip}`);
      this.skip();
    }
    python = env.python;
    // A page of 2 makes the SDK page through collections (it follows metadata.total_count).
    sim = new DateraSimulator({ templates: [TEMPLATE], defaultLimit: 2 });
    base = await sim.start(0);
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sim-python-sdk-'));
  });

  after(async () => {
    await sim?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  for (const version of ['v2.2', 'v2.1']) {
    describe(`API ${version}`, () => {
      const out: Outcome = { steps: new Map(), calls: [] };

      before(async function () {
        this.timeout(180_000);
        sim!.clearCalls();
        const cwd = await fs.mkdtemp(path.join(work, `${version}-`));
        out.steps = await runLifecycle(python, base, version, cwd);
        out.calls = sim!.calls();
      });

      /** The step's report; fails naming the step and the SDK's error when it failed or did not run. */
      const step = (name: string): any => {
        const rec = out.steps.get(name);
        if (!rec) expect.fail(`step ${name} did not run (steps seen: ${[...out.steps.keys()].join(', ') || 'none'})`);
        if (!rec.ok) expect.fail(`step ${name} failed: ${rec.type}: ${rec.error}\n${rec.where ?? ''}`);
        return rec.value;
      };
      const callsTo = (method: string, route: string): SimCall[] => out.calls.filter((c) => c.method === method && c.route === route);

      it(`login: get_api(..., '${version}', tenant='/root', strict=False, secure=False) logs in, reads /${version}/api and /system`, () => {
        const v = step('login');
        expect(v).to.include({ logged_in: true, product_version: '3.3.5', knows_metrics_enum: true });
        expect(callsTo('GET', '/api').map((c) => c.status)).to.deep.equal([200]);
        expect(callsTo('PUT', '/login')[0]!.status).to.equal(200);
      });

      it('strict_endpoints: with strict=True the endpoints used are in /api, an unknown one is refused; lists page by 2', () => {
        const v = step('strict_endpoints');
        expect(v).to.include({ app_templates: 1, unknown_endpoint: 'SdkEndpointNotFound' });
        expect(v.storage_nodes, 'more storage nodes than one page').to.be.greaterThan(2);
        const pages = callsTo('GET', '/storage_nodes');
        expect(pages.length, 'pages read').to.equal(Math.ceil(v.storage_nodes / 2));
        expect(pages.every((c) => c.status === 200)).to.equal(true);
        expect(v.initiators).to.be.a('number');
        if (version === 'v2.2') expect(v.placement_policies).to.include('default');
      });

      it('system: api.system.get() answers sw_version 3.3.5 and op_state running', () => {
        expect(step('system')).to.include({ sw_version: '3.3.5', op_state: 'running' });
      });

      it('templates_list: api.app_templates.list() names the seeded template', () => {
        expect(step('templates_list').names).to.include(TEMPLATE.name);
      });

      it('ai_create: app_instances.create with storage_instances, volumes and a performance policy', () => {
        const v = step('ai_create');
        expect(v).to.include({ admin_state: 'online', volume_size: 3, replica_count: 2 });
        expect(v.path).to.equal(`/app_instances/${v.id}`);
      });

      it('ai_create_template: app_instances.create from the app template with template_override (size 7)', () => {
        expect(step('ai_create_template')).to.include({ app_template: `/app_templates/${TEMPLATE.name}`, volume_size: 7 });
      });

      it('ai_list: app_instances.list() holds both app instances', () => {
        const suffix = version.replace('.', '');
        expect(step('ai_list').names).to.deep.equal([`sdk-ai-${suffix}`, `sdk-tpl-${suffix}`]);
      });

      it('ai_get: app_instances.get(id) and get(name) answer the same app instance', () => {
        const v = step('ai_get');
        expect(v.by_name_id).to.equal(v.id);
      });

      it('metadata_set: ai.metadata.set(...) goes to PUT /int_ecosystem_data with {"data": {...}} and answers the map', () => {
        const v = step('metadata_set');
        expect(v.endpoint).to.equal('int_ecosystem_data');
        expect(v.answer).to.deep.equal({ 'k8s/pv': `pvc-${version.replace('.', '')}`, owner: 'sdk' });
        expect(callsTo('PUT', '/app_instances/:id/int_ecosystem_data').map((c) => c.status)).to.deep.equal([200]);
      });

      it('metadata_get: ai.metadata.get() reads the map back from /int_ecosystem_data', () => {
        expect(step('metadata_get').data).to.deep.equal({ 'k8s/pv': `pvc-${version.replace('.', '')}`, owner: 'sdk' });
      });

      it('metadata_legacy_endpoint: /metadata (Go SDK, CSI) reads the same map and its PUT shows through /int_ecosystem_data', () => {
        const v = step('metadata_legacy_endpoint');
        const suffix = version.replace('.', '');
        expect(v.read_via_metadata).to.deep.equal({ 'k8s/pv': `pvc-${suffix}`, owner: 'sdk' });
        expect(v.ecosystem_after_metadata_put).to.deep.equal({ 'k8s/pv': `pvc-${suffix}`, owner: 'sdk', csi: 'go-sdk' });
      });

      it('si_read: storage_instances.list()/get() answer the iSCSI target (iqn, two portal IPs, available)', () => {
        const v = step('si_read');
        expect(v).to.include({ count: 1, name: 'storage-1', op_state: 'available' });
        expect(v.iqn).to.match(/^iqn\.2013-05\.com\.daterainc:/);
        expect(v.ips).to.have.length(2);
      });

      it('si_metadata: si.metadata.set/get use the storage instance\'s int_ecosystem_data', () => {
        expect(step('si_metadata')).to.deep.equal({ endpoint: 'int_ecosystem_data', data: { lun: '0' } });
      });

      it('volume_resize: volume.set(size=5) grows the volume and it reads back 5', () => {
        expect(step('volume_resize')).to.deep.equal({ before: 3, answer: 5, read_back: 5 });
      });

      it('performance_policy: get answers the create-time limits; set replaces them', () => {
        const v = step('performance_policy');
        expect(v.before).to.include({ total_iops_max: 1000, total_bandwidth_max: 102400 });
        expect(v.after).to.include({ total_iops_max: 2000, total_bandwidth_max: 204800 });
      });

      it('initiator_create: initiators.create(name, id, force=False) answers the initiator at /initiators/<iqn>', () => {
        const v = step('initiator_create');
        expect(v.path).to.equal(`/initiators/${v.id}`);
      });

      it('acl_add / acl_read / acl_remove: the initiator joins the storage instance ACL and leaves it', () => {
        step('acl_add');
        const iqn = step('initiator_create').id as string;
        expect(step('acl_read').initiators).to.deep.equal([`/initiators/${iqn}`]);
        expect(step('acl_remove').initiators).to.deep.equal([]);
      });

      it('session_expiry: after /_sim/expire-sessions the SDK gets 401, logs in again (next call) and repeats the read with 200', () => {
        expect(step('session_expiry')).to.include({ logged_in: true });
        const expired = out.calls.findIndex((c) => c.status === 401);
        expect(expired, 'a call answered 401').to.be.greaterThan(-1);
        const after = out.calls.slice(expired + 1);
        expect(after[0], 'the next call').to.include({ method: 'PUT', route: '/login', status: 200 });
        const { method, path: p } = out.calls[expired]!;
        expect(after.some((c) => c.method === method && c.path === p && c.status === 200), `${method} ${p} repeated with 200`).to.equal(true);
      });

      it('offline: ai.set(admin_state="offline", force=True) takes the app instance and its storage offline', () => {
        expect(step('offline')).to.deep.equal({ admin_state: 'offline', si_op_state: 'unavailable' });
      });

      it('delete / delete_template_ai: ai.delete() removes both app instances (a read then raises ApiNotFoundError)', () => {
        expect(step('delete').read_after).to.equal('ApiNotFoundError');
        expect(step('delete_template_ai').read_after).to.equal('ApiNotFoundError');
        expect(step('ai_list_after').names).to.deep.equal([]);
        expect(sim!.appInstances('/root')).to.deep.equal([]);
      });
    });
  }
});
