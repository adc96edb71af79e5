// SPDX-License-Identifier: Apache-2.0
// The provisioner's HTTP endpoint: /metrics (Prometheus), /healthz (liveness), /readyz
// (caches synced), /healthz/leader-election (fails when a leader stopped renewing).
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface HealthSource {
  /** Process is alive and not wedged. */
  healthy(): { ok: boolean; detail: string };
  /** Caches synced: ready to serve (standbys are ready too: they keep warm caches). */
  ready(): { ok: boolean; detail: string };
  /** Leader election is working (a leader renews; a standby is fine). */
  leaderHealthy(): { ok: boolean; detail: string };
}

export async function startHttp(address: string, port: number, metrics: Metrics, health: HealthSource): Promise<Server & { url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (r: { ok: boolean; detail: string }) => {
      res.statusCode = r.ok ? 200 : 503;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(`${r.ok ? 'ok' : 'not ok'}: ${r.detail}\n`);
    };
    if (path === '/metrics') {
      metrics.registry
        .metrics()
        .then((text) => {
          res.setHeader('content-type', metrics.registry.contentType);
          res.end(text);
        })
        .catch((err: Error) => {
          res.statusCode = 500;
          res.end(err.message);
        });
    } else if (path === '/healthz' || path === '/livez') reply(health.healthy());
    else if (path === '/readyz') reply(health.ready());
    else if (path === '/healthz/leader-election') reply(health.leaderHealthy());
    else {
      res.statusCode = 404;
      res.end('not found: try /metrics, /healthz, /readyz, /healthz/leader-election\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  const a = server.address();
  const url = typeof a === 'object' && a ? `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : '';
  return Object.assign(server, { url });
}
