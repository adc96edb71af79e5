// SPDX-License-Identifier: Apache-2.0
// Plain-HTTP helpers for the simulator specs (global fetch; deliberately not the production client).
import { DateraSimulator, type SimOptions } from '../../lib/sim/server.js';

export interface Reply {
  status: number;
  body: any; // JSON answers under test
  headers: Headers;
}

export interface CallOpts {
  token?: string;
  tenant?: string;
  form?: boolean;
  headers?: Record<string, string>;
}

export async function http(base: string, method: string, path: string, body?: unknown, o: CallOpts = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers['Auth-Token'] = o.token;
  if (o.tenant) headers['tenant'] = o.tenant;
  let payload: string | undefined;
  if (body !== undefined) {
    if (o.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams(body as Record<string, string>).toString();
    } else {
      headers['content-type'] = 'application/json; charset=utf-8';
      payload = JSON.stringify(body);
    }
  }
  const res = await fetch(`${base}${path}`, { method, headers, body: payload });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** A started simulator with a logged-in admin session and short helpers bound to it. */
export class SimFixture {
  readonly sim: DateraSimulator;
  url = '';
  token = '';

  constructor(opts: SimOptions = {}) {
    this.sim = new DateraSimulator(opts);
  }

  async start(): Promise<this> {
    this.url = await this.sim.start(0);
    this.token = await this.login();
    return this;
  }

  async login(name = 'admin', password = 'password'): Promise<string> {
    const r = await http(this.url, 'PUT', '/v2.2/login', { name, password });
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.key as string;
  }

  call(method: string, path: string, body?: unknown, o: CallOpts = {}): Promise<Reply> {
    return http(this.url, method, `/v2.2${path}`, body, { token: this.token, ...o });
  }

  get(path: string, o: CallOpts = {}): Promise<Reply> {
    return this.call('GET', path, undefined, o);
  }

  async stop(): Promise<void> {
    await this.sim.stop();
  }
}

export function aiBody(name: string, size = 10, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    create_mode: 'kubernetes',
    storage_instances: [
      {
        name: 'storage-1',
        ip_pool: { path: '/access_network_ip_pools/default' },
        auth: { type: 'none' },
        volumes: [{ name: 'volume-1', size, replica_count: 3, placement_mode: 'hybrid' }],
      },
    ],
    ...extra,
  };
}

/** Deterministic randomness for fault injection (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
