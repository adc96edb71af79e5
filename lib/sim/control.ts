// SPDX-License-Identifier: Apache-2.0
// The /_sim/ control endpoint: state, call log, faults, session expiry, reset, and the iSCSI
// session controls a fake or stand-in iscsiadm drives. It has no authentication: listen on
// loopback or a private network only. Errors answer `{error[, name]}`: a SimError keeps its
// status (404 unknown target, 403 login refused, 422 bad field), anything else is 400.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppInstance } from '../datera/types.js';
import { SimError } from './errors.js';
import type { SimFaults } from './faults.js';
import { readBody, send } from './http.js';
import { iscsiDrop, iscsiLogin, iscsiLogout, iscsiSessions } from './iscsi.js';
import { system } from './ops/system.js';
import type { SimCall } from './server.js';
import type { SimState } from './state.js';

/** What the control endpoint may read and change in a simulator. */
export interface ControlTarget {
  readonly state: SimState;
  sessionCount(): number;
  callCount(): number;
  calls(): SimCall[];
  clearCalls(): void;
  getFaults(): SimFaults;
  setFaults(f: SimFaults): void;
  expireSessions(): void;
  reset(): void;
}

export async function handleControl(sim: ControlTarget, req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
  const route = `${method} ${url.pathname.replace(/\/+$/, '')}`;
  const ok = (body: unknown): void => send(res, { status: 200, body });
  try {
    switch (route) {
      case 'GET /_sim/state': {
        const tenants: Record<string, AppInstance[]> = {};
        for (const t of sim.state.tenantPaths()) tenants[t] = sim.state.appInstances(t);
        ok({ tenants, sessions: sim.sessionCount(), calls: sim.callCount(), faults: sim.getFaults(), system: system(sim.state) });
        return;
      }
      case 'GET /_sim/calls': {
        const since = Number(url.searchParams.get('since') ?? 0);
        if (!Number.isFinite(since)) throw new Error('since must be a number of milliseconds since the epoch');
        ok({ calls: sim.calls().filter((c) => c.at >= since) });
        return;
      }
      case 'DELETE /_sim/calls':
        sim.clearCalls();
        ok({ ok: true });
        return;
      case 'GET /_sim/faults':
        ok({ faults: sim.getFaults() });
        return;
      case 'PUT /_sim/faults':
        sim.setFaults((await readBody(req)) as SimFaults);
        ok({ faults: sim.getFaults() });
        return;
      case 'POST /_sim/expire-sessions':
        sim.expireSessions();
        ok({ ok: true });
        return;
      case 'GET /_sim/iscsi/sessions':
        ok({ sessions: iscsiSessions(sim.state) });
        return;
      case 'POST /_sim/iscsi/login':
        ok(iscsiLogin(sim.state, await readBody(req)));
        return;
      case 'POST /_sim/iscsi/logout':
        ok(iscsiLogout(sim.state, await readBody(req)));
        return;
      case 'POST /_sim/iscsi/drop':
        ok(iscsiDrop(sim.state, await readBody(req)));
        return;
      case 'POST /_sim/reset':
        sim.reset();
        ok({ ok: true });
        return;
      default:
        send(res, { status: 404, body: { error: `unknown control route ${route}` } });
    }
  } catch (err) {
    const status = err instanceof SimError ? err.status : 400;
    send(res, { status, body: { error: (err as Error).message, ...(err instanceof SimError ? { name: err.apiName } : {}) } });
  }
}
