// SPDX-License-Identifier: Apache-2.0
// Fakes for controller specs: an informer fed by the test, and a recording Kubernetes API whose
// next calls of an operation can be made to fail or wait, with (by default) the confirming reads
// answered from what the API server holds. Shared by the controller specs and harness.ts.
import { ApiException, type KubernetesObject, type V1PersistentVolume, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { InformerEvent, InformerLike } from '../../lib/kube/informer.js';

type Handler<T> = (obj: T, old?: T) => void;

/** An informer whose cache and events the test drives: `set` is an add or update, `remove` a delete. */
export class FakeInformer<T extends KubernetesObject> implements InformerLike<T> {
  readonly items = new Map<string, T>();
  readonly #handlers: Record<InformerEvent, Handler<T>[]> = { add: [], update: [], delete: [] };
  on(ev: InformerEvent, fn: Handler<T>): void {
    this.#handlers[ev].push(fn);
  }
  #key(name: string, ns?: string) {
    return ns ? `${ns}/${name}` : name;
  }
  get(name: string, namespace?: string): T | undefined {
    return this.items.get(this.#key(name, namespace));
  }
  list(): T[] {
    return [...this.items.values()];
  }
  set(obj: T): void {
    const k = this.#key(obj.metadata!.name!, obj.metadata!.namespace);
    const old = this.items.get(k);
    this.items.set(k, obj);
    for (const h of this.#handlers[old ? 'update' : 'add']) h(obj, old);
  }
  remove(obj: T): void {
    this.items.delete(this.#key(obj.metadata!.name!, obj.metadata!.namespace));
    for (const h of this.#handlers.delete) h(obj);
  }
}

export function apiError(code: number, reason: string, message = reason): ApiException<string> {
  return new ApiException(code, message, JSON.stringify({ kind: 'Status', code, reason, message }), {});
}

interface Call {
  op: string;
  arg: unknown;
}

/** An event as the controller recorded it. */
export interface Recorded {
  kind: string;
  name: string;
  type: string;
  reason: string;
  message: string;
}

/**
 * Records Kubernetes calls (writes as createPV/deletePV/patchPV, confirming reads as readPV/readPVC);
 * `failNext(op, err, times)` makes the next `times` calls of op throw; `hold(op)` makes the next call
 * of op wait until the returned function is called. The confirming reads answer from `server` (what
 * the API server holds, which the caches may not show yet). With `confirmingReads: false` the reads
 * are absent, as for a client without them: the controller's caches alone decide.
 */
export class FakeCore {
  readonly calls: Call[] = [];
  readonly server = { volumes: new Map<string, V1PersistentVolume>(), claims: new Map<string, V1PersistentVolumeClaim>() };
  readonly #fail = new Map<string, unknown[]>();
  readonly #holds = new Map<string, Promise<void>>();
  readPersistentVolume?: (a: { name: string }) => Promise<V1PersistentVolume>;
  readNamespacedPersistentVolumeClaim?: (a: { name: string; namespace: string }) => Promise<V1PersistentVolumeClaim>;

  constructor({ confirmingReads = true }: { confirmingReads?: boolean } = {}) {
    if (!confirmingReads) return;
    this.readPersistentVolume = async (a) => {
      this.calls.push({ op: 'readPV', arg: a.name });
      const pv = this.server.volumes.get(a.name);
      if (!pv) throw apiError(404, 'NotFound');
      return pv;
    };
    this.readNamespacedPersistentVolumeClaim = async (a) => {
      this.calls.push({ op: 'readPVC', arg: `${a.namespace}/${a.name}` });
      const pvc = this.server.claims.get(`${a.namespace}/${a.name}`);
      if (!pvc) throw apiError(404, 'NotFound');
      return pvc;
    };
  }
  failNext(op: string, err: unknown, times = 1) {
    this.#fail.set(op, [...(this.#fail.get(op) ?? []), ...Array<unknown>(times).fill(err)]);
  }
  hold(op: string): () => void {
    let release!: () => void;
    this.#holds.set(op, new Promise<void>((r) => (release = r)));
    return release;
  }
  async #run(op: string, arg: unknown) {
    this.calls.push({ op, arg });
    const h = this.#holds.get(op);
    if (h) {
      this.#holds.delete(op);
      await h;
    }
    const f = this.#fail.get(op);
    if (f?.length) throw f.shift();
    return arg;
  }
  createPersistentVolume = async (a: { body: V1PersistentVolume }) => this.#run('createPV', a.body) as Promise<V1PersistentVolume>;
  deletePersistentVolume = async (a: { name: string }) => this.#run('deletePV', a.name) as never;
  patchPersistentVolume = async (a: { name: string; body: unknown }) => this.#run('patchPV', a) as never;
  /**
   * Claim status patches (the resizer) are recorded as patchPVCStatus; `onClaimStatus`, when a spec
   * sets it, plays the API server: it applies the patch and returns the updated claim.
   */
  onClaimStatus?: (a: { name: string; namespace: string; body: object }) => V1PersistentVolumeClaim | undefined;
  patchNamespacedPersistentVolumeClaimStatus = async (a: { name: string; namespace: string; body: object }) => {
    await this.#run('patchPVCStatus', a);
    return this.onClaimStatus?.(a) as V1PersistentVolumeClaim;
  };
  ops(op: string) {
    return this.calls.filter((c) => c.op === op).map((c) => c.arg);
  }
}
