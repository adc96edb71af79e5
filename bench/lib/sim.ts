// SPDX-License-Identifier: Apache-2.0
// The Datera simulator as its own process (lib/sim/cli.ts), so that its event loop never shares
// time with the benchmark driver, and a small client of its control endpoint and API.
import { join } from 'node:path';
import { request } from 'undici';
import { startChild, type Child } from './proc.js';

export const SIM_USER = { name: 'admin', password: 'bench_pw_1' };
/** The driver's own Datera user: its reads (counts, metadata checks) are told apart in the call log. */
const BENCH_USER = { name: 'benchdriver', password: 'bench_pw_2' };

export interface SimCall {
  at: number;
  method: string;
  path: string;
  route: string;
  status: number;
  user?: string;
  fault?: string;
}

export interface SimFaults {
  latencyMs?: number;
  rate503?: number;
  dropAfterRate?: number;
}

export class Sim {
  #key = '';
  private constructor(
    readonly url: string,
    readonly proc: Child,
  ) {}

  /** `srcRoot`: where lib/ is (the run's snapshot); default the repository. */
  static async start(repoRoot: string, logDir: string, opts: { latencyMs: number; sessionTtl?: string; name?: string; srcRoot?: string }): Promise<Sim> {
    const args = [
      '--import', 'tsx', join(opts.srcRoot ?? repoRoot, 'lib/sim/cli.ts'),
      '--port', '0',
      '--latency-ms', String(opts.latencyMs),
      '--users', `${SIM_USER.name}:${SIM_USER.password},${BENCH_USER.name}:${BENCH_USER.password}`,
      '--log-level', 'warn',
      ...(opts.sessionTtl ? ['--session-ttl', opts.sessionTtl] : []),
    ];
    const proc = startChild(opts.name ?? 'datera-sim', process.execPath, args, { cwd: repoRoot, logFile: join(logDir, `${opts.name ?? 'datera-sim'}.log`) });
    const m = await proc.waitFor(/datera-sim listening on (\S+)/, 60_000);
    return new Sim(m[1]!, proc);
  }

  async #control<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await request(this.url + path, {
      method: method as 'GET',
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`simulator ${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  reset(): Promise<unknown> {
    this.#key = '';
    return this.#control('POST', '/_sim/reset');
  }

  setFaults(f: SimFaults): Promise<unknown> {
    return this.#control('PUT', '/_sim/faults', f);
  }

  async calls(since = 0): Promise<SimCall[]> {
    return (await this.#control<{ calls: SimCall[] }>('GET', `/_sim/calls?since=${since}`)).calls;
  }

  async #api<T>(method: string, path: string): Promise<T> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (!this.#key) {
        const res = await request(`${this.url}/v2.2/login`, {
          method: 'PUT',
          body: JSON.stringify(BENCH_USER),
          headers: { 'content-type': 'application/json' },
        });
        const text = await res.body.text();
        if (res.statusCode === 200) this.#key = (JSON.parse(text) as { key: string }).key;
        else {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
      }
      const res = await request(`${this.url}/v2.2${path}`, { method: method as 'GET', headers: { 'auth-token': this.#key, tenant: '/root' } });
      const text = await res.body.text();
      if (res.statusCode === 401) {
        this.#key = '';
        continue;
      }
      if (res.statusCode === 503) {
        await new Promise((r) => setTimeout(r, 50)); // a fault run's injected 503s hit the driver too
        continue;
      }
      if (res.statusCode !== 200) throw new Error(`simulator ${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
      return JSON.parse(text) as T;
    }
    throw new Error(`simulator ${method} ${path}: no answer after 20 attempts`);
  }

  /** Number of app instances in /root (one cheap call: limit=0 answers only the counts). */
  async count(): Promise<number> {
    const r = await this.#api<{ metadata: { total_count: number } }>('GET', '/app_instances?limit=0');
    return r.metadata.total_count;
  }

  /** Names of every app instance in /root. */
  async names(): Promise<string[]> {
    const out: string[] = [];
    for (let offset = 0; ; offset += 1000) {
      const r = await this.#api<{ data: Array<{ name: string }>; metadata: { total_count: number } }>('GET', `/app_instances?limit=1000&offset=${offset}`);
      out.push(...r.data.map((a) => a.name));
      if (r.data.length < 1000) return out;
    }
  }

  /** The metadata map of one app instance. */
  async metadata(name: string): Promise<Record<string, string>> {
    return (await this.#api<{ data: Record<string, string> }>('GET', `/app_instances/${encodeURIComponent(name)}/metadata`)).data;
  }

  /** One app instance as the API answers it (storage instances, volumes with size and performance policy). */
  async appInstance(name: string): Promise<{ storage_instances?: Array<{ volumes?: Array<{ size?: number; performance_policy?: { total_iops_max?: number } }> }> }> {
    return (await this.#api<{ data: Awaited<ReturnType<Sim['appInstance']>> }>('GET', `/app_instances/${encodeURIComponent(name)}`)).data;
  }

  async stop(): Promise<void> {
    await this.proc.kill('SIGTERM');
  }
}

/** Calls of the provisioners only (the driver's own reads excluded), summarised. */
export function summariseCalls(calls: SimCall[]): { total: number; byRoute: Record<string, number>; logins: number; faults: number } {
  const mine = calls.filter((c) => c.user !== BENCH_USER.name);
  const byRoute: Record<string, number> = {};
  let logins = 0;
  let faults = 0;
  for (const c of mine) {
    const k = `${c.method} ${c.route}`;
    byRoute[k] = (byRoute[k] ?? 0) + 1;
    if (c.route === '/login') logins++;
    if (c.fault) faults++;
  }
  return { total: mine.length, byRoute, logins, faults };
}
