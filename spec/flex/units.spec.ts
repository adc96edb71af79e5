// SPDX-License-Identifier: Apache-2.0
// The pure parts of the FlexVolume driver, tested directly: argv and option decoding, secrets,
// credentials precedence, parsers of host files and tool output, redaction, the volume lock.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AuthError, ConnectionError, NotFoundError, TimeoutError } from '../../lib/datera/errors.js';
import { initiatorLabel } from '../../lib/flex/attachment.js';
import { configFromEnv, parseNodeSettings, type NodeSettings } from '../../lib/flex/config.js';
import { allowedEndpoints, endpointKey, explainDateraError, nodeServerAllowed, resolveConnection } from '../../lib/flex/datera.js';
import { checkOwnership } from '../../lib/flex/ownership.js';
import { parseCall } from '../../lib/flex/driver.js';
import { redactArgs } from '../../lib/flex/host.js';
import { byPathLink, parseInitiatorName, parseSessions, portalAddress } from '../../lib/flex/iscsi.js';
import { flexRedact } from '../../lib/flex/log.js';
import { mountAt, mountsOf, parseMounts } from '../../lib/flex/mount.js';
import {
  bytesToGiB,
  chapFrom,
  decodeSecrets,
  loggableOptions,
  mountParams,
  parseOptions,
  volumeRef,
} from '../../lib/flex/options.js';
import { FlexError } from '../../lib/flex/reply.js';
import { withVolumeLock } from '../../lib/flex/state.js';
import { b64 } from './harness.js';

const thrown = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(FlexError);
    return (err as Error).message;
  }
  throw new Error('expected a FlexError');
};

describe('flex: argv parsing', () => {
  it('names the positional arguments of each call-out', () => {
    expect(parseCall(['mount', '/pods/x', '{}'])).to.deep.equal({ callout: 'mount', args: { mountDir: '/pods/x', options: '{}' } });
    expect(parseCall(['detach', 'pvc-1', 'node-1'])).to.deep.equal({ callout: 'detach', args: { pvName: 'pvc-1', nodeName: 'node-1' } });
    expect(parseCall(['expandfs', '{}', '/dev/sdb', '/mnt', '2', '1'])).to.deep.equal({
      callout: 'expandfs',
      args: { options: '{}', devicePath: '/dev/sdb', deviceMountPath: '/mnt', newSize: '2', oldSize: '1' },
    });
    expect(parseCall(['init'])).to.deep.equal({ callout: 'init', args: {} });
  });
  it('optional trailing arguments default to empty; waitforattach may get an empty device path', () => {
    expect(parseCall(['attach', '{}'])).to.deep.equal({ callout: 'attach', args: { options: '{}', nodeName: '' } });
    expect(parseCall(['waitforattach', '', '{}'])).to.deep.equal({ callout: 'waitforattach', args: { devicePath: '', options: '{}' } });
  });
  it('an unknown or missing call-out is unsupported, not an error', () => {
    expect(parseCall(['provision', '{}'])).to.deep.equal({ callout: 'unsupported', name: 'provision' });
    expect(parseCall([])).to.deep.equal({ callout: 'unsupported', name: '' });
    expect(parseCall(['toString'])).to.deep.equal({ callout: 'unsupported', name: 'toString' });
  });
  it('a missing required argument is a Failure with the usage', () => {
    expect(thrown(() => parseCall(['unmount']))).to.equal('unmount: missing argument <mountDir> (usage: unmount <mountDir>)');
  });
});

describe('flex: options and secrets', () => {
  it('parses the options object; numbers and booleans become strings', () => {
    expect(parseOptions('{"a":"x","n":3,"b":true}', 'mount')).to.deep.equal({ a: 'x', n: '3', b: 'true' });
  });
  it('refuses what kubelet never sends', () => {
    expect(thrown(() => parseOptions(undefined, 'attach'))).to.equal('attach: missing the JSON options argument');
    expect(thrown(() => parseOptions('[1]', 'attach'))).to.equal('attach: the options argument must be a JSON object');
    expect(thrown(() => parseOptions('{"a":{"b":1}}', 'attach'))).to.equal('attach: option "a" must be a string');
  });
  it('decodes kubernetes.io/secret/<key> from base64 and ignores other keys', () => {
    const opts = { 'kubernetes.io/secret/password': b64('p@ss wörd'), 'kubernetes.io/secret/server': b64('10.0.0.5:7717'), volumeID: 'x' };
    expect(decodeSecrets(opts)).to.deep.equal({ password: 'p@ss wörd', server: '10.0.0.5:7717' });
    expect(decodeSecrets({ 'kubernetes.io/secret/empty': '' })).to.deep.equal({ empty: '' });
  });
  it('a secret value that is not base64 names its key, never its value', () => {
    const msg = thrown(() => decodeSecrets({ 'kubernetes.io/secret/password': 'plain-text-pw!' }));
    expect(msg).to.equal('secret key "password" is not base64-encoded as kubelet sends it');
  });
  it('loggableOptions drops the secret keys', () => {
    expect(loggableOptions({ 'kubernetes.io/secret/password': 'eA==', volumeID: 'pvc-1' })).to.deep.equal({ volumeID: 'pvc-1' });
  });
  it('volumeRef: PV name from kubelet, app instance from volumeID, defaults for SI and volume', () => {
    expect(volumeRef({ 'kubernetes.io/pvOrVolumeName': 'pvc-1', volumeID: 'legacy_vol', tenant: '/root/t1', backstoreServer: 'h:7717' })).to.deep.equal({
      pvName: 'pvc-1',
      appInstance: 'legacy_vol',
      storageInstance: 'storage-1',
      volume: 'volume-1',
      tenant: '/root/t1',
      server: 'h:7717',
      readOnlyMany: false,
    });
    expect(volumeRef({}, 'pvc-2').appInstance).to.equal('pvc-2');
  });
  it('volumeRef refuses names that could escape a path or that Datera rejects', () => {
    expect(thrown(() => volumeRef({ 'kubernetes.io/pvOrVolumeName': '../etc' }))).to.equal('"../etc" is not a valid PersistentVolume name');
    expect(thrown(() => volumeRef({ 'kubernetes.io/pvOrVolumeName': 'pvc-1', volumeID: 'a/b' }))).to.equal('volumeID "a/b" is not a valid Datera name');
    expect(thrown(() => volumeRef({}))).to.match(/neither kubernetes\.io\/pvOrVolumeName nor volumeID/);
  });
  it('volumeRef takes PV names by the Kubernetes DNS-subdomain rule: empty labels and labels edged with "-" are refused', () => {
    for (const name of ['pvc..1', 'pvc.-1', 'pvc-.1']) {
      expect(thrown(() => volumeRef({ 'kubernetes.io/pvOrVolumeName': name })), name).to.equal(`"${name}" is not a valid PersistentVolume name`);
    }
    expect(volumeRef({ 'kubernetes.io/pvOrVolumeName': 'pvc-1.a-b.c' }).pvName).to.equal('pvc-1.a-b.c');
  });
  it('mountParams: xfs and rw by default; ro, ext4 and fsGroup when given', () => {
    expect(mountParams({})).to.deep.equal({ fsType: 'xfs', readOnly: false, fsGroup: undefined });
    expect(
      mountParams({ 'kubernetes.io/fsType': 'EXT4', 'kubernetes.io/readwrite': 'ro', 'kubernetes.io/mounterArgs.FsGroup': '2000' }),
    ).to.deep.equal({ fsType: 'ext4', readOnly: true, fsGroup: 2000 });
    expect(thrown(() => mountParams({ 'kubernetes.io/fsType': 'btrfs' }))).to.equal('fsType "btrfs" is not supported (use xfs or ext4)');
    expect(thrown(() => mountParams({ 'kubernetes.io/mounterArgs.FsGroup': '-1' }))).to.match(/is not a group id/);
    expect(thrown(() => mountParams({ 'kubernetes.io/readwrite': 'rx' }))).to.match(/must be "rw" or "ro"/);
  });
  it('chapFrom: one-way, mutual, or none', () => {
    expect(chapFrom({ chapUser: 'u', chapPassword: 'p' })).to.deep.equal({ user: 'u', password: 'p' });
    expect(chapFrom({ chapUser: 'u', chapPassword: 'p', chapUserIn: 'ui', chapPasswordIn: 'pi' })).to.deep.equal({
      user: 'u',
      password: 'p',
      userIn: 'ui',
      passwordIn: 'pi',
    });
    expect(chapFrom({ chapUser: 'u' })).to.equal(undefined);
    expect(chapFrom(undefined)).to.equal(undefined);
  });
  it('bytesToGiB rounds up', () => {
    expect(bytesToGiB('1', 'x')).to.equal(1);
    expect(bytesToGiB(String(2 ** 30), 'x')).to.equal(1);
    expect(bytesToGiB(String(2 ** 30 + 1), 'x')).to.equal(2);
    expect(bytesToGiB('35184372088832', 'x')).to.equal(32768);
    expect(thrown(() => bytesToGiB('1Gi', 'new size'))).to.equal('new size "1Gi" is not a size in bytes');
  });
});

describe('flex: credentials', () => {
  const settings: NodeSettings = { server: 'node-dat:7717', username: 'nodeuser', password: 'nodepw', tenant: '/root/node', ldapServer: 'ldap1' };
  const file = '/etc/datera/flex.json';
  it('the mount Secret wins when it has a username and password', () => {
    const c = resolveConnection({ secret: { username: 'u', password: 'p', server: 's:7718' }, settings, settingsFile: file, server: 'pv:7717' });
    expect(c).to.include({ endpoint: 's:7718', username: 'u', password: 'p', tenant: '/root/node', source: 'the volume Secret' });
    expect(c.ldapServer).to.equal(undefined);
  });
  it('without Secret credentials the node settings are used, with the PV address (when allowed) and tenant first', () => {
    const allowing = { ...settings, allowedServers: ['pv:7717'] };
    const c = resolveConnection({ secret: { server: 'ignored:1' }, settings: allowing, settingsFile: file, server: 'pv:7717', tenant: '/root/pv' });
    expect(c).to.include({ endpoint: 'pv:7717', username: 'nodeuser', password: 'nodepw', tenant: '/root/pv', ldapServer: 'ldap1', source: file });
  });
  it('node credentials are refused for an endpoint that is not the server or in allowedServers, naming it', () => {
    expect(thrown(() => resolveConnection({ settings, settingsFile: file, server: 'http://evil.example:7717' }))).to.equal(
      `refusing to send the node's Datera credentials to http://evil.example:7717: it is not the server or one of the allowedServers in ${file}`,
    );
    expect(thrown(() => resolveConnection({ settings, settingsFile: file, server: 'node-dat:7718' })), 'same host, other port').to.contain('refusing');
    expect(thrown(() => resolveConnection({ settings, settingsFile: file, server: 'not a url' }))).to.contain('refusing to send');
    expect(thrown(() => resolveConnection({ settings, settingsFile: file, server: ' other:7717 ' }))).to.match(/^refusing to send the node's Datera credentials to other:7717: /);
  });
  it('the allow-list compares endpoints as the client connects (scheme, host, port, path; no /vX.Y)', () => {
    expect(endpointKey('10.0.0.5:7718')).to.equal(endpointKey('https://10.0.0.5:7718/'));
    expect(endpointKey('10.0.0.5')).to.equal(endpointKey('https://10.0.0.5:7718/v2.2'));
    expect(endpointKey('10.0.0.5:7717')).to.equal('http://10.0.0.5:7717');
    expect(endpointKey('HTTPS://Datera.Example:443/')).to.equal('https://datera.example');
    expect(endpointKey('http://10.0.0.5:7718')).to.not.equal(endpointKey('10.0.0.5:7718'));
    const allowing: NodeSettings = { ...settings, allowedServers: ['https://10.0.0.5:7718'] };
    expect(nodeServerAllowed(allowing, file, '10.0.0.5:7718')).to.equal(true);
    expect(nodeServerAllowed(allowing, file, 'http://node-dat:7717/')).to.equal(true);
    expect(nodeServerAllowed(allowing, file, '10.0.0.6:7718')).to.equal(false);
    expect(thrown(() => parseNodeSettings({ server: 's', username: 'u', password: 'p', allowedServers: 'a,b' }, 'f'))).to.equal(
      'f: "allowedServers" must be a list of Datera endpoints (URL or host:port)',
    );
  });
  it('tenant falls back to /root', () => {
    expect(resolveConnection({ secret: { username: 'u', password: 'p', server: 's' }, settings: undefined, settingsFile: file }).tenant).to.equal('/root');
  });
  it('no Secret and no settings file is a clear Failure', () => {
    expect(thrown(() => resolveConnection({ settings: undefined, settingsFile: file }))).to.match(/no Datera credentials: .*\/etc\/datera\/flex\.json does not exist/);
  });
  it('node settings are validated by key, never echoing values', () => {
    expect(thrown(() => parseNodeSettings({ server: 's', username: 'u' }, 'f'))).to.equal('f: "password" is missing');
    expect(thrown(() => parseNodeSettings({ server: 's', username: 'u', password: 7 }, 'f'))).to.equal('f: "password" must be a string');
    expect(thrown(() => parseNodeSettings({ server: 's', username: 'u', password: 'p', attach: 'yes' }, 'f'))).to.equal('f: "attach" must be true or false');
  });
  it('Datera errors become Failure messages naming the endpoint and the credential source', () => {
    const conn = resolveConnection({ settings, settingsFile: file });
    expect(explainDateraError(new AuthError('login refused'), conn, 'x').message).to.equal(
      'Datera at node-dat:7717 rejected the login of user "nodeuser" (credentials from /etc/datera/flex.json): login refused',
    );
    expect(explainDateraError(new ConnectionError('ECONNREFUSED'), conn, 'add the ACL').message).to.equal(
      'cannot reach Datera at node-dat:7717 while trying to add the ACL: ECONNREFUSED',
    );
    expect(explainDateraError(new NotFoundError('gone'), conn, 'read it').message).to.equal('Datera refused to read it: gone');
  });
});

describe('flex: credentials, edge cases', () => {
  const settings: NodeSettings = { server: 'node-dat:7717', username: 'nodeuser', password: 'nodepw' };
  const file = '/etc/datera/flex.json';
  it('an endpoint that is no URL or host:port is a FlexError naming it (trimmed) and what it is, keeping the cause', () => {
    let err: unknown;
    try {
      endpointKey('  ftp://x  ');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FlexError);
    expect((err as Error).message).to.equal('Datera server "ftp://x" is not a valid URL or host:port: Datera endpoint must be http or https: ftp://x');
    expect((err as Error).cause).to.be.instanceOf(Error);
    expect(thrown(() => allowedEndpoints({ ...settings, allowedServers: ['ftp://y'] }, file))).to.match(/^\/etc\/datera\/flex\.json: server "ftp:\/\/y" is not a valid/);
  });
  it('the allow-list holds the server and every allowedServers entry, as connection keys', () => {
    expect([...allowedEndpoints({ ...settings, allowedServers: ['https://b:7718/', '10.0.0.9'] }, file)]).to.deep.equal([
      'http://node-dat:7717',
      'https://b:7718',
      'https://10.0.0.9:7718',
    ]);
    expect([...allowedEndpoints(settings, file)]).to.deep.equal(['http://node-dat:7717']);
  });
  it('no server in the Secret, the PV or the settings (or only blanks) is a Failure saying where to set it', () => {
    const msg = 'no Datera server address: set "server" in the Secret or backstoreServer in the PV options';
    expect(thrown(() => resolveConnection({ secret: { username: 'u', password: 'p' }, settings: undefined, settingsFile: file }))).to.equal(msg);
    expect(thrown(() => resolveConnection({ secret: { username: 'u', password: 'p', server: '  ' }, settings: undefined, settingsFile: file }))).to.equal(msg);
  });
  it('the endpoint is trimmed; with Secret credentials the PV address is used when the Secret names no server', () => {
    const c = resolveConnection({ secret: { username: 'u', password: 'p' }, settings: undefined, settingsFile: file, server: ' pv:7717 ' });
    expect(c.endpoint).to.equal('pv:7717');
    expect(resolveConnection({ settings, settingsFile: file }).endpoint).to.equal('node-dat:7717');
  });
  it('a Secret with only a username (or only a password) does not replace the node credentials', () => {
    for (const secret of [{ username: 'u' }, { password: 'p' }]) {
      const c = resolveConnection({ secret: { ...secret, server: 'ignored:7717', tenant: '/root/ignored', ldapServer: 'ignored' }, settings, settingsFile: file });
      expect(c).to.deep.equal({
        endpoint: 'node-dat:7717',
        username: 'nodeuser',
        password: 'nodepw',
        tenant: '/root',
        ldapServer: undefined,
        caBundle: undefined,
        insecureSkipTlsVerify: undefined,
        source: file,
      });
    }
  });
  it('tenant: the PV first, then the Secret (only with its credentials), then the node settings', () => {
    const withTenant: NodeSettings = { ...settings, tenant: '/root/node' };
    const secret = { username: 'u', password: 'p', server: 's:7717', tenant: '/root/secret' };
    expect(resolveConnection({ secret, settings: withTenant, settingsFile: file, tenant: '/root/pv' }).tenant).to.equal('/root/pv');
    expect(resolveConnection({ secret, settings: withTenant, settingsFile: file }).tenant).to.equal('/root/secret');
    expect(resolveConnection({ secret: { ...secret, tenant: '' }, settings: withTenant, settingsFile: file }).tenant).to.equal('/root/node');
  });
  it('LDAP comes from where the credentials come from; CA bundle and TLS verification always from the node settings', () => {
    const tls: NodeSettings = { ...settings, ldapServer: 'node-ldap', caBundle: 'PEM', insecureSkipTlsVerify: true };
    const s = resolveConnection({ secret: { username: 'u', password: 'p', server: 's:7717', ldapServer: 'secret-ldap' }, settings: tls, settingsFile: file });
    expect(s).to.include({ ldapServer: 'secret-ldap', caBundle: 'PEM', insecureSkipTlsVerify: true, username: 'u', password: 'p' });
    expect(resolveConnection({ secret: { username: 'u', password: 'p', server: 's:7717' }, settings: tls, settingsFile: file }).ldapServer).to.equal(undefined);
    expect(resolveConnection({ settings: { ...tls, ldapServer: '' }, settingsFile: file }).ldapServer).to.equal(undefined);
    expect(resolveConnection({ settings: tls, settingsFile: file }).ldapServer).to.equal('node-ldap');
  });
  it('explainDateraError: a FlexError passes unchanged, a timeout is "cannot reach", any other error names the action and keeps the cause', () => {
    const conn = resolveConnection({ settings, settingsFile: file });
    const flex = new FlexError('already clear');
    expect(explainDateraError(flex, conn, 'x')).to.equal(flex);
    const timeout = new TimeoutError('deadline exceeded');
    const t = explainDateraError(timeout, conn, 'read it');
    expect(t.message).to.equal('cannot reach Datera at node-dat:7717 while trying to read it: deadline exceeded');
    expect(t.cause).to.equal(timeout);
    const plain = new Error('socket hang up');
    const p = explainDateraError(plain, conn, 'add the ACL');
    expect(p).to.be.instanceOf(FlexError);
    expect(p.message).to.equal('add the ACL: socket hang up');
    expect(p.cause).to.equal(plain);
    expect(explainDateraError('weird', conn, 'add the ACL').message).to.equal('add the ACL: weird');
    expect(explainDateraError(undefined, conn, 'add the ACL').message).to.equal('add the ACL: undefined');
    const auth = new AuthError('bad');
    expect(explainDateraError(auth, conn, 'x').cause).to.equal(auth);
    const nf = new NotFoundError('gone');
    expect(explainDateraError(nf, conn, 'x').cause).to.equal(nf);
    expect(explainDateraError(new ConnectionError('refused'), conn, 'x').cause).to.be.instanceOf(ConnectionError);
  });
});

describe('flex: ownership and access modes', () => {
  const ref = volumeRef({ 'kubernetes.io/pvOrVolumeName': 'pvc-1', volumeID: 'pvc-1' });
  const md = { 'k8s-pv': 'pvc-1', 'k8s-claim-namespace': 'team-a' };
  it('accepts metadata naming the PV, and the claim namespace when a pod namespace is given', () => {
    expect(checkOwnership(md, ref, 'team-a')).to.deep.equal({ pv: 'pvc-1', claimNamespace: 'team-a' });
    expect(checkOwnership(md, ref, undefined), 'attach: no pod namespace').to.deep.equal({ pv: 'pvc-1', claimNamespace: 'team-a' });
  });
  it('refuses untagged or foreign metadata and another namespace, naming the app instance and why', () => {
    expect(thrown(() => checkOwnership({}, ref, 'team-a'))).to.equal(
      'refusing to attach app instance pvc-1: it carries no k8s-pv ownership metadata, so it was not provisioned for PersistentVolume pvc-1',
    );
    expect(thrown(() => checkOwnership({ ...md, 'k8s-pv': 'pvc-2' }, ref, undefined))).to.equal(
      'refusing to attach app instance pvc-1: its k8s-pv metadata names PersistentVolume pvc-2, not pvc-1',
    );
    expect(thrown(() => checkOwnership(md, ref, 'team-b'))).to.equal(
      'refusing to mount app instance pvc-1 for a pod in namespace team-b: it belongs to a claim in namespace team-a',
    );
    expect(thrown(() => checkOwnership({ 'k8s-pv': 'pvc-1' }, ref, 'team-a'))).to.equal(
      'refusing to mount app instance pvc-1 for a pod in namespace team-a: it carries no k8s-claim-namespace ownership metadata',
    );
  });
  it('accessModes: only ReadOnlyMany is read-only-many; missing means ReadWriteOnce; unknown modes are refused', () => {
    const rox = (v: string | undefined) => volumeRef({ 'kubernetes.io/pvOrVolumeName': 'pvc-1', ...(v === undefined ? {} : { accessModes: v }) }).readOnlyMany;
    expect(rox('ReadOnlyMany')).to.equal(true);
    expect(rox(' ReadOnlyMany ')).to.equal(true);
    expect(rox(undefined)).to.equal(false);
    expect(rox('')).to.equal(false);
    expect(rox('ReadWriteOnce')).to.equal(false);
    expect(rox('ReadWriteOnce,ReadOnlyMany')).to.equal(false);
    expect(rox('ReadWriteMany')).to.equal(false);
    expect(thrown(() => rox('ReadMostly'))).to.equal(
      'option accessModes "ReadMostly" lists unknown access modes ReadMostly (allowed: ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod)',
    );
  });
  it('a ReadOnlyMany PV is mounted read-only even when kubelet says rw', () => {
    expect(mountParams({ 'kubernetes.io/readwrite': 'rw', accessModes: 'ReadOnlyMany' }).readOnly).to.equal(true);
    expect(mountParams({ 'kubernetes.io/readwrite': 'rw', accessModes: 'ReadWriteOnce' }).readOnly).to.equal(false);
  });
});

describe('flex: host files and tool output', () => {
  it('reads the InitiatorName line, ignoring comments', () => {
    expect(parseInitiatorName('## generated\n#InitiatorName=iqn.old\nInitiatorName=iqn.1994-05.com.redhat:abc\n')).to.equal('iqn.1994-05.com.redhat:abc');
    expect(parseInitiatorName('# nothing\n')).to.equal(undefined);
  });
  it('parses iscsiadm -m session output', () => {
    const out = [
      'tcp: [3] 172.28.41.9:3260,1 iqn.2013-05.com.daterainc:tc:01:sn:9b8e220259a8a79f (non-flash)',
      'tcp: [4] [fd00::9]:3260,1 iqn.2013-05.com.daterainc:tc:01:sn:00000000000000aa (non-flash)',
      'garbage',
    ].join('\n');
    expect(parseSessions(out)).to.deep.equal([
      { sid: '3', portal: '172.28.41.9:3260', iqn: 'iqn.2013-05.com.daterainc:tc:01:sn:9b8e220259a8a79f' },
      { sid: '4', portal: '[fd00::9]:3260', iqn: 'iqn.2013-05.com.daterainc:tc:01:sn:00000000000000aa' },
    ]);
  });
  it('spells portals and by-path links as iscsiadm and udev do', () => {
    expect(portalAddress('10.0.0.1')).to.equal('10.0.0.1:3260');
    expect(portalAddress('fd00::9')).to.equal('[fd00::9]:3260');
    expect(byPathLink('/dev', '10.0.0.1:3260', 'iqn.x:y')).to.equal('/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x:y-lun-0');
  });
  it('parses /proc/mounts with octal escapes and finds mounts through symlinks', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flex-unit-'));
    try {
      fs.writeFileSync(path.join(tmp, 'sdb'), '');
      fs.symlinkSync(path.join(tmp, 'sdb'), path.join(tmp, 'link'));
      const mounts = parseMounts(`${tmp}/sdb /var/lib/kubelet/pods/a/volumes/my\\040vol xfs rw,relatime 0 0\nproc /proc proc rw 0 0\n`);
      expect(mounts[0]).to.deep.equal({ source: `${tmp}/sdb`, target: '/var/lib/kubelet/pods/a/volumes/my vol', fsType: 'xfs', options: ['rw', 'relatime'] });
      expect(mountAt(mounts, '/var/lib/kubelet/pods/a/volumes/my vol')?.fsType).to.equal('xfs');
      expect(mountsOf(mounts, [path.join(tmp, 'link')])).to.have.length(1);
      expect(mountsOf(mounts, ['/dev/sdz'])).to.have.length(0);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  it('initiator labels are names Datera accepts', () => {
    expect(initiatorLabel('node-1.example.com')).to.equal('k8s_node-1.example.com');
    expect(initiatorLabel('we!rd host')).to.equal('k8s_we_rd_host');
    expect(initiatorLabel('n'.repeat(200))).to.equal(`k8s_${'n'.repeat(124)}`);
    expect(initiatorLabel('we!rd host')).to.match(/^[a-zA-Z_][a-zA-Z0-9_\-\s.]{2,127}$/);
  });
});

describe('flex: secrets stay out of logs', () => {
  it('redactArgs hides iscsiadm CHAP password values', () => {
    const args = ['-m', 'node', '-o', 'update', '-n', 'node.session.auth.password', '-v', 's3cret'];
    expect(redactArgs(args).at(-1)).to.equal('[REDACTED]');
    const user = ['-n', 'node.session.auth.username', '-v', 'bob'];
    expect(redactArgs(user).at(-1)).to.equal('bob');
  });
  it('flexRedact hides CHAP keys and kubelet secret keys besides the project list', () => {
    const line = JSON.stringify(
      { chapPassword: 'a', 'kubernetes.io/secret/password': 'b', password: 'c', nested: { chapPasswordIn: 'd' }, volumeID: 'pvc-1' },
      flexRedact,
    );
    expect(line).to.not.match(/"a"|"b"|"c"|"d"/);
    expect(line).to.contain('pvc-1');
  });
});

describe('flex: configuration from the environment', () => {
  it('defaults to the real host paths', () => {
    const c = configFromEnv({});
    expect(c).to.include({
      devDir: '/dev',
      sysDir: '/sys',
      procMounts: '/proc/mounts',
      initiatorNameFile: '/etc/iscsi/initiatorname.iscsi',
      settingsFile: '/etc/datera/flex.json',
      stateDir: '/var/lib/datera/flex',
      logFile: '/var/log/datera-flex.log',
    });
  });
  it('DATERA_FLEX_ROOT moves every host path; single variables override one path', () => {
    const c = configFromEnv({ DATERA_FLEX_ROOT: '/tmp/host', DATERA_FLEX_LOG: '/x/flex.log', DATERA_FLEX_POLL_MS: '5' });
    expect(c).to.include({ devDir: '/tmp/host/dev', procMounts: '/tmp/host/proc/mounts', logFile: '/x/flex.log', pollMs: 5 });
    expect(c.multipathConfFiles).to.deep.equal(['/tmp/host/etc/multipath.conf', '/tmp/host/etc/multipath/conf.d/datera.conf']);
    expect(thrown(() => configFromEnv({ DATERA_FLEX_POLL_MS: 'soon' }))).to.equal('DATERA_FLEX_POLL_MS=soon is not a number of milliseconds');
  });
});

describe('flex: per-volume lock', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flex-lock-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serialises call-outs on the same volume and releases the lock', async () => {
    const order: string[] = [];
    const slow = withVolumeLock(dir, 'pvc-1', 5000, 5, async () => {
      order.push('a-start');
      await new Promise((r) => setTimeout(r, 50));
      order.push('a-end');
    });
    const fast = withVolumeLock(dir, 'pvc-1', 5000, 5, async () => void order.push('b'));
    await Promise.all([slow, fast]);
    expect(order).to.deep.equal(['a-start', 'a-end', 'b']);
    expect(fs.existsSync(path.join(dir, 'pvc-1.lock'))).to.equal(false);
  });

  it('takes over the lock of a process that died', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid!;
    await new Promise((r) => child.on('close', r));
    fs.writeFileSync(path.join(dir, 'pvc-1.lock'), String(pid));
    expect(await withVolumeLock(dir, 'pvc-1', 1000, 5, async () => 'ran')).to.equal('ran');
  });

  it('gives up on a live owner after the timeout with a retryable message', async () => {
    fs.writeFileSync(path.join(dir, 'pvc-1.lock'), String(process.ppid));
    let message = '';
    await withVolumeLock(dir, 'pvc-1', 100, 10, async () => 'ran').catch((e: Error) => (message = e.message));
    expect(message).to.equal(`another datera/iscsi call-out (pid ${process.ppid}) is still working on pvc-1; try again later`);
  });
});
