// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import nock from 'nock';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import {
  describeError,
  isAlreadyExists,
  isKubeConflict,
  isGone,
  isKubeNotFound,
  isTransient,
  statusOf,
} from '../../lib/kube/errors.js';
import { SERVER, testKubeConfig } from './helpers.js';

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** Runs a real typed call against nock and returns what it threw. */
async function failure(core: CoreV1Api, call: (c: CoreV1Api) => Promise<unknown>): Promise<unknown> {
  try {
    await call(core);
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('kube/errors', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;

  beforeEach(() => {
    nock.disableNetConnect();
    kc = testKubeConfig();
    core = kc.makeApiClient(CoreV1Api);
  });

  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('parses a 404 NotFound body (a raw string in 1.4.0)', async () => {
    nock(SERVER)
      .get('/api/v1/namespaces/ns/persistentvolumeclaims/missing')
      .reply(404, status(404, 'NotFound', 'persistentvolumeclaims "missing" not found'));
    const err = await failure(core, (c) => c.readNamespacedPersistentVolumeClaim({ name: 'missing', namespace: 'ns' }));
    expect(typeof (err as { body: unknown }).body).to.equal('string');
    expect(statusOf(err)).to.deep.equal({
      code: 404,
      reason: 'NotFound',
      message: 'persistentvolumeclaims "missing" not found',
    });
    expect(isKubeNotFound(err)).to.equal(true);
    expect(isAlreadyExists(err) || isKubeConflict(err) || isGone(err) || isTransient(err)).to.equal(false);
  });

  it('tells 409 AlreadyExists from 409 Conflict', async () => {
    nock(SERVER)
      .post('/api/v1/persistentvolumes')
      .reply(409, status(409, 'AlreadyExists', 'persistentvolumes "pvc-1" already exists'))
      .put('/api/v1/persistentvolumes/pvc-1')
      .reply(409, status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version'));
    const exists = await failure(core, (c) => c.createPersistentVolume({ body: { metadata: { name: 'pvc-1' } } }));
    const conflict = await failure(core, (c) =>
      c.replacePersistentVolume({ name: 'pvc-1', body: { metadata: { name: 'pvc-1', resourceVersion: '1' } } }),
    );
    expect(isAlreadyExists(exists)).to.equal(true);
    expect(isKubeConflict(exists)).to.equal(false);
    expect(isKubeConflict(conflict)).to.equal(true);
    expect(isAlreadyExists(conflict)).to.equal(false);
    expect(statusOf(conflict)?.reason).to.equal('Conflict');
    expect(isTransient(conflict)).to.equal(false);
  });

  it('recognises 410 Gone / Expired', async () => {
    nock(SERVER)
      .get('/api/v1/persistentvolumeclaims')
      .query(true)
      .reply(410, status(410, 'Expired', 'too old resource version: 1 (5)'));
    const err = await failure(core, (c) => c.listPersistentVolumeClaimForAllNamespaces({ resourceVersion: '1' }));
    expect(isGone(err)).to.equal(true);
    expect(statusOf(err)).to.include({ code: 410, reason: 'Expired' });
    // A watch reports HTTP errors as Error{statusCode}; a watch ERROR event carries a Status.
    expect(isGone(Object.assign(new Error('Gone'), { statusCode: 410 }))).to.equal(true);
    expect(isGone(status(410, 'Expired', 'too old'))).to.equal(true);
  });

  it('classifies 5xx, 429 and transport failures as transient', async () => {
    nock(SERVER)
      .get('/api/v1/namespaces/ns/secrets/a')
      .reply(503, 'upstream unavailable')
      .get('/api/v1/namespaces/ns/secrets/b')
      .reply(429, status(429, 'TooManyRequests', 'slow down'))
      .get('/api/v1/namespaces/ns/secrets/c')
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    const e503 = await failure(core, (c) => c.readNamespacedSecret({ name: 'a', namespace: 'ns' }));
    const e429 = await failure(core, (c) => c.readNamespacedSecret({ name: 'b', namespace: 'ns' }));
    const reset = await failure(core, (c) => c.readNamespacedSecret({ name: 'c', namespace: 'ns' }));
    expect(statusOf(e503)).to.deep.equal({ code: 503 }); // body is not JSON: code only
    expect(isTransient(e503)).to.equal(true);
    expect(isTransient(e429)).to.equal(true);
    expect(statusOf(reset)).to.equal(undefined);
    expect(isTransient(reset)).to.equal(true);
    expect(describeError(reset)).to.include({ name: 'FetchError' });
  });

  it('never throws on odd input', () => {
    for (const v of [undefined, null, 0, 'x', {}, [], new Error('plain')]) {
      expect(statusOf(v)).to.equal(undefined);
      expect(isKubeNotFound(v) || isKubeConflict(v) || isGone(v) || isAlreadyExists(v) || isTransient(v)).to.equal(false);
    }
    const abort = Object.assign(new Error('The user aborted a request.'), { name: 'AbortError' });
    expect(isTransient(abort)).to.equal(true);
  });

  it('describeError keeps code/reason/message and drops response headers', async () => {
    nock(SERVER)
      .get('/api/v1/namespaces/ns/secrets/s')
      .reply(403, status(403, 'Forbidden', 'secrets "s" is forbidden'), { 'x-secret-header': 'leak' });
    const err = await failure(core, (c) => c.readNamespacedSecret({ name: 's', namespace: 'ns' }));
    const d = describeError(err);
    expect(d).to.deep.equal({ code: 403, reason: 'Forbidden', message: 'secrets "s" is forbidden' });
    expect(JSON.stringify(d)).to.not.include('leak');
  });
});
