// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner explain`: what the provisioner would do with a claim, before anyone makes
// it. Runs the provisioner's own pure decisions (decideClaim, parseTemplates, translateClaim ->
// appInstanceRequest, buildVolume) on a StorageClass, the AppTemplates and a claim, each read from
// a file, from the cluster, or (the claim) made up from flags, and prints the Datera app-instance
// create request and the PV, with the precedence layer that decided each setting, or every
// problem the claim would be refused for.
//
// Contract: never calls Datera and never reads a Secret; reads the Kubernetes API only for inputs
// not given as files (and opens no connection at all when every input is a file). Exit 0: the
// claim would be provisioned; 1: it would be refused (or the templates are invalid); 2: usage
// error or an input that cannot be read.
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { dump } from 'js-yaml';
import type { SettingKey } from '../config-flags.js';
import type { AppInstanceCreate } from '../datera/types.js';
import { isKubeNotFound, statusOf } from '../kube/errors.js';
import { KubeRest } from '../kube/rest.js';
import { parseTemplates, type TemplateSet } from '../provision/app-templates.js';
import { Ann, decideClaim, pvNameFor } from '../provision/claim.js';
import { provisionSecretRef } from '../provision/credentials.js';
import { translateClaim } from '../provision/datera-provisioner.js';
import { parseQuantity } from '../provision/quantity.js';
import type { Origin, SettingSource, VolumeParams } from '../provision/request.js';
import { FIELDS, type ScalarField } from '../provision/parameters.js';
import { buildVolume } from '../provision/volume.js';
import { optionsHelp, parseCommandArgs, resolveSettings, settingOptions, type OptionSpec } from './args.js';
import { EXIT, type CommandIo, type CommandModule } from './command.js';
import { pickObject, readDocuments, templatesTextOf } from './inputs.js';

/** Provisioner settings explain reads like the provisioner (flags, environment, config file). */
const SETTING_KEYS: readonly SettingKey[] = [
  'provisionerName',
  'extraProvisionerNames',
  'namespace',
  'templatesConfigMap',
  'templatesKey',
  'defaultFsType',
  'credentialsSecret.name',
  'credentialsSecret.namespace',
  'credentialsDir',
  'datera.endpoint',
  'datera.tenant',
];

/** The uid of a claim made up from flags (or read from a file without one); the PV name derives from it. */
export const PLACEHOLDER_UID = '00000000-0000-0000-0000-000000000000';

const OWN_OPTIONS: readonly OptionSpec[] = [
  { name: 'class', kind: 'string', valueName: 'NAME', help: 'the StorageClass, read from the cluster (or picked from --class-file); default: the claim\'s class' },
  { name: 'class-file', kind: 'string', valueName: 'FILE', help: 'read the StorageClass from a YAML or JSON file instead' },
  { name: 'templates-file', kind: 'string', valueName: 'FILE', help: 'the AppTemplates: a ConfigMap manifest (key --templates-key) or a bare templates.yaml; default: the ConfigMap in the cluster, read only when the class names a template' },
  { name: 'claim', kind: 'string', valueName: 'NAMESPACE/NAME', help: 'a PersistentVolumeClaim in the cluster (or picked from --claim-file by name)' },
  { name: 'claim-file', kind: 'string', valueName: 'FILE', help: 'read the claim from a YAML or JSON file' },
  { name: 'size', kind: 'string', valueName: 'QUANTITY', help: "the claim's storage request, e.g. 10Gi (replaces the request of a claim read from the cluster or a file)" },
  { name: 'annotation', kind: 'multi', valueName: 'KEY=VALUE', help: 'a claim annotation, e.g. datera.io/replicas=2 (added to those of a read claim)' },
  { name: 'access-mode', kind: 'multi', valueName: 'MODE', help: "the claim's access modes (default ReadWriteOnce; replaces those of a read claim)" },
  { name: 'kubeconfig', kind: 'string', valueName: 'FILE', help: 'kubeconfig for cluster reads (default: $KUBECONFIG, in-cluster, ~/.kube/config)' },
  { name: 'output', short: 'o', kind: 'string', valueName: 'text|yaml|json', help: 'output format (default text)' },
];
const OPTIONS: readonly OptionSpec[] = [...OWN_OPTIONS, ...settingOptions(SETTING_KEYS)];

const HELP = `datera-provisioner explain: the Datera request and PV a claim would get, and why

Usage: datera-provisioner explain [--class NAME | --class-file FILE] [--templates-file FILE]
                                  [--claim NAMESPACE/NAME | --claim-file FILE | --size Q] [flags]

Runs the provisioner's own decisions on a StorageClass, the AppTemplates and a claim, and prints
the app-instance create request it would send to Datera and the PersistentVolume it would write,
with the layer that decided each setting (later layers win):
  default      built-in (3 replicas, xfs, 16Gi)
  provisioner  the provisioner's settings (--default-fs-type, --datera-endpoint, ...)
  template     the AppTemplate the class names
  class        the StorageClass parameters and fields
  claim        the claim's size, access modes and datera.io/<key> annotations
or every problem the claim would be refused for (a ProvisioningFailed event). It never calls
Datera and never reads a Secret; it reads the cluster only for inputs not given as files.
The provisioner settings below are read as the provisioner reads them (flags, environment, config
file), so running it in the provisioner's pod, or with its flags, shows what that pod would do.

Exit codes: 0 the claim would be provisioned, 1 it would be refused, 2 usage or input error.

Flags:
${optionsHelp(OPTIONS)}

Examples:
  # a class from the cluster, a made-up 10Gi claim asking for 2 replicas
  datera-provisioner explain --class datera-fast --size 10Gi --annotation datera.io/replicas=2
  # an existing (e.g. Pending) claim, with its own class and the live templates
  datera-provisioner explain --claim shop/data-db-0
  # a change under review, entirely offline: nothing is read from any cluster
  datera-provisioner explain --class-file sc.yaml --templates-file manifests/base/templates.yaml \\
      --claim-file pvc.yaml -o json | jq .request
  # offline too, with the settings of a particular provisioner deployment
  datera-provisioner explain --class-file sc.yaml --templates-file cm.yaml --size 1Ti \\
      --provisioner-name datera.io/provisioner-datera --default-fs-type ext4 \\
      --datera-endpoint 10.0.0.5:7718
`;

/** One problem the claim would be refused for, with the layer at fault. */
interface Problem {
  origin: Origin | 'templates';
  message: string;
  /** The parameter, annotation or field at fault, when known. */
  parameter?: string;
  allowed?: string;
}

/** One row of the settings table: a setting, its value and who decided it. */
interface SettingRow extends SettingSource {
  setting: string;
  value: unknown;
  /** Why the value is not in the request, when it is not. */
  unsent?: string;
}

interface Explanation {
  /** `provision`: exit 0; `refuse` (a ProvisioningFailed event) and `ignore` (the class is another provisioner's): exit 1. */
  verdict: 'provision' | 'refuse' | 'ignore';
  claim: { namespace: string; name: string; uid: string; from: string };
  storageClass: { name: string; provisioner: string; from: string };
  templates: { from: string; names: string[] } | null;
  /** The Datera `tenant` header of the create call. */
  tenant?: string;
  request?: AppInstanceCreate;
  persistentVolume?: V1PersistentVolume;
  settings?: SettingRow[];
  problems: Problem[];
  notes: string[];
}

/** Thrown for an input that cannot be read (exit 2). */
class InputError extends Error {}

async function run(argv: string[], io: CommandIo): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS);
  const output = args.strings.get('output') ?? 'text';
  if (!['text', 'json', 'yaml'].includes(output)) args.problems.push(`--output must be text, json or yaml, got ${JSON.stringify(output)}`);
  const s = args.strings;
  if (s.has('claim') && !/^[^/]+\/[^/]+$/.test(s.get('claim')!)) args.problems.push(`--claim must be NAMESPACE/NAME, got ${JSON.stringify(s.get('claim'))}`);
  if (!s.has('class') && !s.has('class-file') && !s.has('claim') && !s.has('claim-file'))
    args.problems.push('name the StorageClass (--class NAME or --class-file FILE), or a claim whose class to use (--claim or --claim-file)');
  const size = s.get('size');
  if (size !== undefined && parseQuantity(size) === undefined) args.problems.push(`--size must be a Kubernetes quantity such as 10Gi, 500Mi or 1Ti, got ${JSON.stringify(size)}`);
  for (const a of args.multi.get('annotation') ?? []) {
    if (a.indexOf('=') <= 0) args.problems.push(`--annotation must be KEY=VALUE, got ${JSON.stringify(a)}`);
  }
  const settings = resolveSettings(SETTING_KEYS, args, io.env, (p) => io.readFile(p));
  args.problems.push(...settings.problems);
  if (args.problems.length > 0) {
    io.stderr(`datera-provisioner explain: ${args.problems.join('\n  ')}\nSee datera-provisioner explain --help.\n`);
    return EXIT.usage;
  }

  let rest: KubeRest | undefined;
  const kube = (): KubeRest => (rest ??= new KubeRest(io.kubeConfig(s.get('kubeconfig')), { timeoutMs: 15_000, userAgent: 'datera-provisioner-explain' }));
  let result: Explanation;
  try {
    result = await explain(args, settings.values, io, kube);
  } catch (e) {
    if (!(e instanceof InputError) && !(e instanceof Error && 'code' in e && e.code === 'KUBE_CONFIG')) throw e;
    io.stderr(`datera-provisioner explain: ${e.message}\n`);
    return EXIT.usage;
  } finally {
    await rest?.close();
  }
  if (output === 'json') io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else if (output === 'yaml') io.stdout(dump(result, { lineWidth: -1, noRefs: true }));
  else io.stdout(asText(result));
  return result.verdict === 'provision' ? EXIT.ok : EXIT.found;
}

/** GET of one object; 404 and other failures become InputErrors naming the object. */
async function readObject<T>(kube: () => KubeRest, path: string, what: string): Promise<T | undefined> {
  try {
    return (await kube().request('GET', path, undefined, true)) as T;
  } catch (e) {
    if (isKubeNotFound(e)) return undefined;
    const st = statusOf(e);
    throw new InputError(`cannot read ${what} from the cluster: ${st?.code ? `HTTP ${st.code} ` : ''}${(e as Error).message}`);
  }
}

function readFileDocs(io: CommandIo, file: string): unknown[] {
  let text: string;
  try {
    text = io.readFile(file);
  } catch (e) {
    throw new InputError(`${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const docs = readDocuments(text, file);
  if (!docs.ok) throw new InputError(docs.error);
  return docs.value;
}

function picked<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new InputError(r.error);
  return r.value;
}

const enc = encodeURIComponent;

async function explain(
  args: ReturnType<typeof parseCommandArgs>,
  values: Map<SettingKey, unknown>,
  io: CommandIo,
  kube: () => KubeRest,
): Promise<Explanation> {
  const s = args.strings;
  const notes: string[] = [];
  const problems: Problem[] = [];
  const setting = <T>(k: SettingKey): T => values.get(k) as T;
  const provisionerName = setting<string>('provisionerName');
  const names = new Set([provisionerName, ...setting<string[]>('extraProvisionerNames')]);
  const namespace = setting<string>('namespace');

  // --- the claim ---------------------------------------------------------------------------------
  let pvc: V1PersistentVolumeClaim;
  let claimFrom: string;
  if (s.has('claim-file')) {
    const file = s.get('claim-file')!;
    const name = s.get('claim')?.split('/')[1];
    pvc = structuredClone(picked(pickObject<V1PersistentVolumeClaim>(readFileDocs(io, file), 'PersistentVolumeClaim', file, name)));
    claimFrom = `file ${file}`;
  } else if (s.has('claim')) {
    const [ns, name] = s.get('claim')!.split('/') as [string, string];
    const got = await readObject<V1PersistentVolumeClaim>(kube, `/api/v1/namespaces/${enc(ns)}/persistentvolumeclaims/${enc(name)}`, `claim ${ns}/${name}`);
    if (got === undefined) throw new InputError(`claim ${ns}/${name} does not exist in the cluster`);
    pvc = got;
    claimFrom = 'the cluster';
  } else {
    pvc = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { namespace: 'default', name: 'explain' }, spec: { accessModes: ['ReadWriteOnce'] } };
    claimFrom = 'flags';
  }
  pvc.metadata ??= {};
  pvc.spec ??= {};
  pvc.metadata.namespace ??= 'default';
  pvc.metadata.name ??= 'explain';
  if (!pvc.metadata.uid) {
    pvc.metadata.uid = PLACEHOLDER_UID;
    notes.push(`the claim has no uid (not made yet): the PV and app instance name pvc-<uid> uses the placeholder ${PLACEHOLDER_UID}`);
  }
  const edited: string[] = [];
  if (s.has('size')) {
    pvc.spec.resources = { ...pvc.spec.resources, requests: { ...pvc.spec.resources?.requests, storage: s.get('size')! } };
    edited.push('size');
  }
  for (const a of args.multi.get('annotation') ?? []) {
    const i = a.indexOf('=');
    pvc.metadata.annotations = { ...pvc.metadata.annotations, [a.slice(0, i)]: a.slice(i + 1) };
    if (!edited.includes('annotations')) edited.push('annotations');
  }
  if (args.multi.has('access-mode')) {
    pvc.spec.accessModes = args.multi.get('access-mode')!;
    edited.push('access modes');
  }
  if (edited.length > 0 && claimFrom !== 'flags') notes.push(`the claim from ${claimFrom} is explained with its ${edited.join(', ')} replaced by the flags`);
  if (pvc.spec.volumeName) {
    notes.push(`the claim is already bound to PV ${pvc.spec.volumeName}: explained as if it were new (a bound claim is left alone)`);
    delete pvc.spec.volumeName;
  }
  if (pvc.metadata.deletionTimestamp) {
    notes.push('the claim is being deleted: explained as if it were not');
    delete pvc.metadata.deletionTimestamp;
  }

  // --- the class ---------------------------------------------------------------------------------
  const claimClass = pvc.metadata.annotations?.[Ann.betaStorageClass] ?? pvc.spec.storageClassName ?? undefined;
  let sc: V1StorageClass;
  let classFrom: string;
  if (s.has('class-file')) {
    const file = s.get('class-file')!;
    sc = picked(pickObject<V1StorageClass>(readFileDocs(io, file), 'StorageClass', file, s.get('class')));
    classFrom = `file ${file}`;
  } else {
    const name = s.get('class') ?? claimClass;
    if (!name) throw new InputError(`claim ${pvc.metadata.namespace}/${pvc.metadata.name} names no StorageClass; name one with --class or --class-file`);
    const got = await readObject<V1StorageClass>(kube, `/apis/storage.k8s.io/v1/storageclasses/${enc(name)}`, `StorageClass ${name}`);
    if (got === undefined) throw new InputError(`StorageClass ${name} does not exist in the cluster`);
    sc = got;
    classFrom = 'the cluster';
  }
  const className = sc.metadata?.name ?? '';
  if (claimClass !== undefined && claimClass !== className) notes.push(`the claim names class ${JSON.stringify(claimClass)}: explained with class ${className} instead`);
  // As the PV controller would: the claim names the class, and is handed to the class's provisioner.
  pvc.spec.storageClassName = className;
  pvc.metadata.annotations = { ...pvc.metadata.annotations, [Ann.storageProvisioner]: sc.provisioner };
  if (pvc.metadata.annotations[Ann.betaStorageClass] !== undefined) pvc.metadata.annotations[Ann.betaStorageClass] = className;
  if (sc.volumeBindingMode === 'WaitForFirstConsumer' && !pvc.metadata.annotations[Ann.selectedNode]) {
    notes.push('the class binds WaitForFirstConsumer: the claim is provisioned only once a pod using it is scheduled; explained as if it were');
    pvc.metadata.annotations[Ann.selectedNode] = '(scheduled node)';
  }

  // --- the templates -----------------------------------------------------------------------------
  const key = setting<string>('templatesKey');
  const cmName = setting<string>('templatesConfigMap');
  const namesTemplate = ['template', 'appTemplate'].some((p) => (sc.parameters?.[p] ?? '').trim() !== '');
  let templates: TemplateSet = { templates: new Map() };
  let templatesInfo: Explanation['templates'] = null;
  let text: { text: string; where: string } | undefined;
  if (s.has('templates-file')) {
    const file = s.get('templates-file')!;
    let raw: string;
    try {
      raw = io.readFile(file);
    } catch (e) {
      throw new InputError(`${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    text = picked(templatesTextOf(raw, file, key));
  } else if (namesTemplate) {
    const where = `ConfigMap ${namespace}/${cmName}`;
    const cm = await readObject<V1ConfigMap>(kube, `/api/v1/namespaces/${enc(namespace)}/configmaps/${enc(cmName)}`, where);
    if (cm === undefined) {
      notes.push(`${where} does not exist: no AppTemplates (the provisioner keeps the last good set it had, if any)`);
      templatesInfo = { from: `${where} (missing)`, names: [] };
    } else if (typeof cm.data?.[key] !== 'string') {
      notes.push(`${where} has no key "${key}": no AppTemplates (the provisioner keeps the last good set it had, if any)`);
      templatesInfo = { from: `${where} (no key ${key})`, names: [] };
    } else text = { text: cm.data[key], where: `key "${key}" of ${where} (the cluster)` };
  }
  if (text !== undefined) {
    const parsed = parseTemplates(text.text);
    if (!parsed.ok) {
      for (const e of parsed.errors) problems.push({ origin: 'templates', message: e });
      notes.push(`the AppTemplates in ${text.where} are invalid, so the claim cannot be explained; a running provisioner refuses them whole and keeps its last good set`);
      return {
        verdict: 'refuse',
        claim: claimSummary(pvc, claimFrom),
        storageClass: { name: className, provisioner: sc.provisioner, from: classFrom },
        templates: { from: text.where, names: [] },
        problems,
        notes,
      };
    }
    templates = parsed.set;
    templatesInfo = { from: text.where, names: [...templates.templates.keys()] };
  }

  // --- the decisions -----------------------------------------------------------------------------
  const base = {
    claim: claimSummary(pvc, claimFrom),
    storageClass: { name: className, provisioner: sc.provisioner, from: classFrom },
    templates: templatesInfo,
  };
  if (!names.has(sc.provisioner)) {
    const served = [...names].join(', ');
    problems.push({
      origin: 'class',
      parameter: 'provisioner',
      message: `StorageClass "${className}" has provisioner "${sc.provisioner}", and this provisioner serves only ${served} (--provisioner-name, --extra-provisioner-names): the claim is left to "${sc.provisioner}"`,
      allowed: served,
    });
    return { verdict: 'ignore', ...base, problems, notes };
  }
  const decision = decideClaim(pvc, { names, legacyAlphaClasses: {}, getClass: (n) => (n === className ? sc : undefined) });
  let pvClassName = className;
  if (decision.action === 'refuse') problems.push({ origin: 'claim', message: decision.message });
  else if (decision.action !== 'provision') {
    problems.push({ origin: 'class', message: `this provisioner (${[...names].join(', ')}) would not provision the claim: ${decision.reason}`, parameter: 'provisioner' });
  } else pvClassName = decision.pvClassName;

  const pvName = pvNameFor(pvc);
  const defaultFsType = setting<string>('defaultFsType');
  const tr = translateClaim({ claim: pvc, pvName, className, storageClass: sc, templates, defaultFsType });
  if (!tr.ok) problems.push(...translationProblems(pvc, sc, { pvName, className, templates, defaultFsType }, problems, notes));
  if (problems.length > 0 || !tr.ok) return { verdict: 'refuse', ...base, problems, notes };

  // --- the connection and the PV (as DateraConnections.forProvision would choose, without reading the Secret)
  const volume = tr.volume;
  const defaultSecret = { name: setting<string>('credentialsSecret.name'), namespace: setting<string>('credentialsSecret.namespace') || namespace };
  const secretRef = provisionSecretRef(volume, defaultSecret, namespace);
  const ownSecret = !volume.secretName;
  const endpointSetting = setting<string>('datera.endpoint');
  // A class Secret's `server` and `tenant` win, falling back to the provisioner's (credentials.ts).
  const secretId = `Secret ${secretRef.namespace}/${secretRef.name}`;
  const endpoint = ownSecret && endpointSetting ? endpointSetting : `(the "server" of ${secretId}${!ownSecret && endpointSetting ? `, else ${endpointSetting}` : ''})`;
  const tenant = volume.tenant ?? (ownSecret ? setting<string>('datera.tenant') : `(the "tenant" of ${secretId}, else ${setting<string>('datera.tenant')})`);
  if (ownSecret && !endpointSetting) notes.push('no Datera endpoint given (--datera-endpoint, DAT_MGMT or the server file): the PV shows a placeholder');
  if (!ownSecret) notes.push(`the class names Secret ${secretRef.namespace}/${secretRef.name}: its "server" (and "tenant") decide the endpoint at provision time; explain never reads Secrets`);
  const reclaimPolicy = sc.reclaimPolicy ?? 'Delete';
  const pv = buildVolume({ pvName, claim: pvc, pvClassName, reclaimPolicy, provisionerName, volume, endpoint, tenant, secretRef });
  const src = pvc.spec.dataSourceRef ?? pvc.spec.dataSource;
  if (src) {
    notes.push(
      `the claim clones claim ${pvc.metadata.namespace}/${src.name}: the request actually sent is {name, create_mode, clone_volume_src} of that claim's app instance, ` +
        'and the volume is grown to the size below if the source is smaller; the settings are checked as shown',
    );
  }

  return {
    verdict: 'provision',
    ...base,
    tenant,
    request: tr.request,
    persistentVolume: pv,
    settings: settingRows(tr.sources, volume, {
      endpoint: { value: endpoint, origin: ownSecret ? 'provisioner' : 'class', desc: ownSecret ? 'provisioner setting datera.endpoint' : `server of Secret ${secretRef.namespace}/${secretRef.name}` },
      tenant: volume.tenant === undefined ? { value: tenant, origin: ownSecret ? 'provisioner' : 'class', desc: ownSecret ? 'provisioner setting datera.tenant' : `tenant of Secret ${secretRef.namespace}/${secretRef.name}` } : undefined,
      secretRef: { value: `${secretRef.namespace}/${secretRef.name}`, origin: ownSecret ? 'provisioner' : 'class', desc: ownSecret ? 'provisioner setting credentialsSecret' : `StorageClass "${className}" parameter "secretName"` },
      reclaimPolicy: { value: reclaimPolicy, origin: sc.reclaimPolicy ? 'class' : 'default', desc: sc.reclaimPolicy ? `StorageClass "${className}" field reclaimPolicy` : 'Kubernetes default of a StorageClass' },
      accessModes: { value: (pvc.spec.accessModes ?? []).join(','), origin: 'claim', desc: `claim "${pvc.metadata.namespace}/${pvc.metadata.name}" field spec.accessModes`, param: 'spec.accessModes' },
    }),
    problems,
    notes,
  };
}

/**
 * Every problem of the request translation explain can find. appInstanceRequest stops at its first
 * problem; when that problem is one StorageClass parameter (other than the template reference)
 * or one claim annotation, it is set aside (the parameter or annotation removed from a copy) and
 * the translation runs again, so that independent problems are all listed. Anything else (a
 * missing template, a size, the PV name) ends the search, with a note. Access modes decideClaim
 * already refused are set aside the same way, without a second problem.
 */
function translationProblems(
  pvc: V1PersistentVolumeClaim,
  sc: V1StorageClass,
  fixed: { pvName: string; className: string; templates: TemplateSet; defaultFsType: string },
  already: readonly Problem[],
  notes: string[],
): Problem[] {
  const out: Problem[] = [];
  const parameters = { ...sc.parameters };
  const annotations = { ...pvc.metadata?.annotations };
  let accessModes = pvc.spec?.accessModes ?? [];
  for (let round = 0; round < 50; round++) {
    const claim = { ...pvc, metadata: { ...pvc.metadata, annotations }, spec: { ...pvc.spec, accessModes } };
    const tr = translateClaim({ ...fixed, claim, storageClass: { ...sc, parameters } });
    if (tr.ok) return out;
    const e = tr.error;
    if (e.parameter === 'accessModes' && already.some((p) => p.origin === 'claim' && p.message.includes('access mode'))) {
      accessModes = ['ReadWriteOnce'];
      continue;
    }
    out.push({ origin: originOfParameter(e.parameter), message: e.message, parameter: e.parameter, ...(e.allowed !== undefined ? { allowed: e.allowed } : {}) });
    if (e.parameter in annotations) delete annotations[e.parameter];
    else if (e.parameter in parameters && e.parameter !== 'template' && e.parameter !== 'appTemplate') delete parameters[e.parameter];
    else {
      notes.push('the request translation stops at this kind of problem: fix it and explain again to see whether more follow');
      return out;
    }
  }
  return out;
}

function claimSummary(pvc: V1PersistentVolumeClaim, from: string): Explanation['claim'] {
  return { namespace: pvc.metadata!.namespace!, name: pvc.metadata!.name!, uid: pvc.metadata!.uid!, from };
}

/** The layer a ParameterError's parameter belongs to, by how request.ts names parameters. */
function originOfParameter(parameter: string): Origin | 'templates' {
  if (parameter.startsWith('datera.io/') || parameter === 'accessModes' || parameter === 'resources.requests.storage' || parameter === 'pvName') return 'claim';
  if (parameter.startsWith('templates.yaml:')) return 'template';
  if (parameter.startsWith('defaults.')) return 'provisioner';
  return 'class';
}

/** Settings a Datera-side template decides: computed, but not in the request. */
const DECIDED_BY_DATERA_TEMPLATE = new Set([
  'replicas', 'placementMode', 'placementPolicy', 'ipPool', 'snapshotPolicies',
  'totalIopsMax', 'readIopsMax', 'writeIopsMax', 'totalBandwidthMax', 'readBandwidthMax', 'writeBandwidthMax', 'iopsPerGiB', 'bandwidthPerGiB',
]);

function settingRows(
  sources: Record<string, SettingSource | undefined>,
  volume: VolumeParams,
  extra: Record<string, (SettingSource & { value: unknown }) | undefined>,
): SettingRow[] {
  const rows: SettingRow[] = [];
  const valueOf = (k: string, src: SettingSource): unknown => {
    if (k === 'size') return `${volume.sizeGiB}Gi`;
    if (k === 'defaultSizeGiB') return `${String(src.value)}Gi`;
    return src.value;
  };
  const order = ['size', 'defaultSizeGiB', 'template', 'dateraTemplate', 'disableTemplateOverride', 'replicas', 'placementMode', 'placementPolicy', 'ipPool', 'fsType', 'tenant'];
  const keys = [...order.filter((k) => sources[k] !== undefined), ...Object.keys(sources).filter((k) => !order.includes(k) && sources[k] !== undefined)];
  for (const k of keys) {
    const src = sources[k]!;
    // Named as in templates.yaml and in `datera.io/<key>` annotations.
    const setting = k in FIELDS ? FIELDS[k as ScalarField].key : k;
    const row: SettingRow = { setting, value: valueOf(k, src), origin: src.origin, desc: src.desc, ...(src.param !== undefined ? { param: src.param } : {}) };
    if (volume.dateraTemplate !== undefined && DECIDED_BY_DATERA_TEMPLATE.has(k)) row.unsent = `not sent: Datera template "${volume.dateraTemplate}" decides it`;
    if (k === 'defaultSizeGiB' && sources.size?.origin === 'claim') row.unsent = 'unused: the claim requests a size';
    rows.push(row);
  }
  // A per-GiB limit combines with the absolute one: say which of the two the request carries.
  if (volume.dateraTemplate === undefined) {
    for (const [abs, perGiB, key] of [['totalIopsMax', 'iopsPerGiB', 'total_iops_max'], ['totalBandwidthMax', 'bandwidthPerGiB', 'total_bandwidth_max']] as const) {
      const per = sources[perGiB];
      if (per === undefined || !per.value) continue;
      const a = sources[abs];
      const scaled = Number(per.value) * volume.sizeGiB;
      const capped = a !== undefined && Number(a.value) > 0 && Number(a.value) <= scaled;
      const by = capped ? a! : per;
      const formula = `qos.${perGiB} ${String(per.value)} x ${volume.sizeGiB}Gi = ${scaled}`;
      rows.push({
        setting: `performance_policy.${key}`,
        value: volume.qos[key],
        origin: by.origin,
        desc: a !== undefined && Number(a.value) > 0 ? `min(qos.${abs} ${String(a.value)}, ${formula})` : formula,
      });
    }
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) rows.push({ setting: k, ...v });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Text output

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd()).join('\n');
}

function show(v: unknown): string {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function asText(x: Explanation): string {
  const out: string[] = [];
  out.push(`Claim:         ${x.claim.namespace}/${x.claim.name} (uid ${x.claim.uid}, from ${x.claim.from})`);
  out.push(`StorageClass:  ${x.storageClass.name} (provisioner ${x.storageClass.provisioner}, from ${x.storageClass.from})`);
  out.push(`AppTemplates:  ${x.templates ? `${x.templates.names.length > 0 ? x.templates.names.join(', ') : '(none)'} from ${x.templates.from}` : 'not read (the class names no template)'}`);
  out.push('');
  if (x.verdict !== 'provision') {
    out.push(
      x.verdict === 'refuse'
        ? `The claim would be REFUSED (event ProvisioningFailed); ${x.problems.length} problem(s):`
        : 'The claim would NOT be provisioned by this provisioner (no event):',
    );
    for (const p of x.problems) out.push(`  - [${p.origin}] ${p.message}${p.allowed !== undefined && !p.message.includes(p.allowed) ? ` (allowed: ${p.allowed})` : ''}`);
  } else {
    out.push('The claim would be provisioned.');
    out.push('');
    out.push('Settings (later layers win: default < provisioner < template < class < claim):');
    out.push(table([['SETTING', 'VALUE', 'FROM', 'SET BY'], ...x.settings!.map((r) => [r.setting, show(r.value), r.origin, `${r.desc}${r.unsent ? ` (${r.unsent})` : ''}`])]));
    out.push('');
    out.push(`Datera request: POST app_instances, tenant ${x.tenant}`);
    out.push(JSON.stringify(x.request, null, 2));
    out.push('');
    out.push('PersistentVolume:');
    out.push(dump(x.persistentVolume, { lineWidth: -1, noRefs: true }).trimEnd());
  }
  if (x.notes.length > 0) {
    out.push('');
    out.push('Notes:');
    for (const n of x.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}

export const command: CommandModule = { help: HELP, run };
