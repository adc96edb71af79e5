// SPDX-License-Identifier: Apache-2.0
// Inputs of the admin commands read from files: Kubernetes objects from YAML or JSON (one or more
// documents, or a `kind: List`), and the AppTemplates text from either a ConfigMap manifest or a
// bare templates.yaml. Pure apart from what the caller passes in; problems come back as messages
// naming the file and what was expected, never as exceptions.
import { loadAll } from 'js-yaml';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type Read<T> = { ok: true; value: T } | { ok: false; error: string };

/** Every document of a YAML (or JSON) text; `kind: List` documents contribute their items. */
export function readDocuments(text: string, file: string): Read<unknown[]> {
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch (e) {
    const err = e as { reason?: string; mark?: { line?: number; column?: number }; message?: string };
    const at = err.mark?.line !== undefined ? ` at line ${err.mark.line + 1}, column ${(err.mark.column ?? 0) + 1}` : '';
    return { ok: false, error: `${file} is not valid YAML or JSON: ${err.reason ?? err.message ?? String(e)}${at}` };
  }
  const out: unknown[] = [];
  for (const d of docs) {
    if (d === null || d === undefined) continue;
    if (isObject(d) && typeof d.kind === 'string' && d.kind.endsWith('List') && Array.isArray(d.items)) out.push(...(d.items as unknown[]));
    else out.push(d);
  }
  return { ok: true, value: out };
}

function nameOf(o: Obj): string | undefined {
  const md = o.metadata;
  return isObject(md) && typeof md.name === 'string' ? md.name : undefined;
}

/**
 * The one object of `kind` in `file` (`name` selects among several). Names the kinds and names
 * found when there is none, or more than one without a selection.
 */
export function pickObject<T>(docs: readonly unknown[], kind: string, file: string, name?: string): Read<T> {
  const all = docs.filter((d): d is Obj => isObject(d) && d.kind === kind);
  const found = name === undefined ? all : all.filter((d) => nameOf(d) === name);
  if (found.length === 1) return { ok: true, value: found[0] as T };
  const kinds = [...new Set(docs.map((d) => (isObject(d) && typeof d.kind === 'string' ? d.kind : '(no kind)')))];
  if (found.length === 0) {
    const names = all.map((d) => nameOf(d) ?? '(unnamed)');
    return {
      ok: false,
      error:
        all.length > 0
          ? `${file} holds no ${kind} named "${name}"; it holds ${kind} ${names.join(', ')}`
          : `${file} holds no ${kind}${kinds.length > 0 ? `; it holds ${kinds.join(', ')}` : ' (it is empty)'}`,
    };
  }
  return { ok: false, error: `${file} holds ${found.length} ${kind} objects (${found.map((d) => nameOf(d) ?? '(unnamed)').join(', ')}); name the one to use` };
}

/** The templates text of a file and what to call it in messages. */
export interface TemplatesText {
  text: string;
  /** e.g. `templates.yaml` (a bare file) or `key "templates.yaml" of ConfigMap datera-system/datera-templates`. */
  where: string;
}

/**
 * The AppTemplates text in `text` (read from `file`): the value of `key` of the ConfigMap in it
 * (`configMap` selects among several), or the whole text when it is a bare templates.yaml, i.e.
 * anything that is not a ConfigMap manifest; a text that is not YAML is returned whole, so that
 * parseTemplates reports the syntax error with its line.
 */
export function templatesTextOf(text: string, file: string, key: string, configMap?: string): Read<TemplatesText> {
  const docs = readDocuments(text, file);
  if (!docs.ok) return { ok: true, value: { text, where: file } };
  const maps = docs.value.filter((d): d is Obj => isObject(d) && d.kind === 'ConfigMap');
  if (maps.length === 0) return { ok: true, value: { text, where: file } };
  // Several ConfigMaps (a rendered kustomization): the named one, else the only one with the key.
  const candidates = configMap === undefined && maps.length > 1 ? maps.filter((m) => isObject(m.data) && typeof m.data[key] === 'string') : maps;
  const picked = pickObject<Obj>(candidates.length > 0 ? candidates : maps, 'ConfigMap', file, configMap);
  if (!picked.ok) return picked;
  const cm = picked.value;
  const md = isObject(cm.metadata) ? cm.metadata : {};
  const id = `${typeof md.namespace === 'string' ? `${md.namespace}/` : ''}${nameOf(cm) ?? '(unnamed)'}`;
  const data = isObject(cm.data) ? cm.data : {};
  const value = data[key];
  if (typeof value !== 'string') {
    const keys = Object.keys(data);
    return { ok: false, error: `ConfigMap ${id} in ${file} has no key "${key}"${keys.length > 0 ? `; its keys: ${keys.join(', ')}` : ' (no data)'}; choose one with --templates-key` };
  }
  return { ok: true, value: { text: value, where: `key "${key}" of ConfigMap ${id} (${file})` } };
}
