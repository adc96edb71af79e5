// SPDX-License-Identifier: Apache-2.0
// Fakes for controller specs: an Informer fed by the test and a recording Kubernetes API whose
// next call of an operation can be made to fail. Shared by the controller specs and harness.ts.
import { ApiException, type KubernetesObject, type V1PersistentVolume } from '@kubernetes/client-node';

type Handler<T> = (obj: T, old?: T) => void;

/** The part of Informer the controller uses, fed by the test. */
export class FakeInformer<T extends KubernetesObject> {
  readonly items = new Map<string, T>();
  readonly #handlers: Record<string, Handler<T>[]> = { add: [], update: [], delete: [] };
  on(ev: 'add' | 'update' | 'delete', fn: Handler<T>): void {
    this.#handlers[ev]!.push(fn);
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
    for (const h of this.#handlers[old ? 'update' : 'add']!) h(obj, old);
  }
  remove(obj: T): void {
    this.items.delete(this.#key(obj.metadata!.name!, obj.metadata!.namespace));
    for (const h of this.#handlers.delete!) h(obj);
  }
}

export function apiError(code: number, reason: string, message = reason): ApiException<string> {
  return new ApiException(code, message, JSON.stringify({ kind: 'Status', code, reason, message }), {});
}

export interface Call {
  op: string;
  arg: unknown;
}

/** Records Kubernetes writes; `failNext(op, err)` makes the next call of op throw. */
export class FakeCore {
  readonly calls: Call[] = [];
  readonly #fail = new Map<string, unknown[]>();
  failNext(op: string, err: unknown, times = 1) {
    this.#fail.set(op, [...(this.#fail.get(op) ?? []), ...Array<unknown>(times).fill(err)]);
  }
  #run(op: string, arg: unknown) {
    this.calls.push({ op, arg });
    const f = this.#fail.get(op);
    if (f?.length) throw f.shift();
    return arg;
  }
  createPersistentVolume = async (a: { body: V1PersistentVolume }) => this.#run('createPV', a.body) as V1PersistentVolume;
  deletePersistentVolume = async (a: { name: string }) => this.#run('deletePV', a.name) as never;
  patchPersistentVolume = async (a: { name: string; body: unknown }) => this.#run('patchPV', a) as never;
  ops(op: string) {
    return this.calls.filter((c) => c.op === op).map((c) => c.arg);
  }
}

export interface Recorded {
  kind: string;
  name: string;
  type: string;
  reason: string;
  message: string;
}
