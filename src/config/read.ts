/**
 * cluster.yml → ClusterConfig. `parseClusterConfig` is pure; `readClusterConfig` adds the file.
 *
 * RKE parses cluster.yml with gopkg.in/yaml.v2, so this does too, as far as it matters:
 * YAML 1.1 scalars (`yes`/`on` are booleans), duplicate keys allowed with the LAST one
 * winning (corpus 13 and 17 rely on it), `<<` merge keys, only the first document read,
 * and string fields get the scalar as written (`port: 22` → "22").
 */
import { readFile } from 'node:fs/promises';
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document,
  type Node as YamlNode,
} from 'yaml';
import type { ClusterConfig } from './types.js';
import type { RawValue } from './schema.js';
import {
  ClusterConfigError,
  throwProblems,
  validateClusterConfig,
  type ConfigProblem,
  type KeyPath,
  type Position,
} from './validate.js';

/** `--config` default: RKE_CONFIG, else cluster.yml (RKE cmd/common.go). */
export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  return env.RKE_CONFIG || 'cluster.yml';
}

export async function readClusterConfig(path: string): Promise<ClusterConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ClusterConfigError([`${path}: cannot read the cluster configuration: ${readFailure(error)}`], {
      cause: error,
    });
  }
  return parseClusterConfig(text, path);
}

function readFailure(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file (give --config or set RKE_CONFIG)';
    case 'EISDIR':
      return 'it is a directory (give the path of the cluster.yml file with --config)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return (error as Error).message ?? String(error);
  }
}

/** Parse, validate and apply RKE's defaults. `file` is used verbatim in messages and as config.file. */
export function parseClusterConfig(text: string, file: string): ClusterConfig {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(source, {
    version: '1.1',
    uniqueKeys: false, // yaml.v2 accepts duplicate keys; the walk below makes the last one win
    lineCounter,
    prettyErrors: false, // messages without a source excerpt: it could hold a secret
  });
  const position = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  // yaml.v2 reads only the first document.
  const document = Array.isArray(documents) ? documents[0] : undefined;
  const syntaxErrors = document ? document.errors : ((documents as { errors?: unknown[] }).errors ?? []);
  if (syntaxErrors.length > 0) {
    const problems: ConfigProblem[] = syntaxErrors.map((error) => {
      const { pos, message } = error as { pos?: [number, number]; message: string };
      return { path: ['yaml'], message: firstLine(message), ...position(pos?.[0] ?? 0) };
    });
    throwProblems(file, problems, syntaxErrors[0]);
  }
  const root: Loc = { value: position(document?.contents?.range?.[0] ?? 0), isNull: false, children: new Map() };
  const walk = document ? new Walk(document, position) : undefined;
  const raw = walk && document ? walk.convert(document.contents, root) : null;
  if (walk && walk.problems.length > 0) throwProblems(file, walk.problems);
  if (raw === null) {
    const message = 'missing nodes (the file is empty; expected a cluster configuration)';
    throwProblems(file, [{ path: ['nodes'], message, line: 1, column: 1 }]);
  }
  return validateClusterConfig(raw, file, (path, at) => locate(root, path, at));
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

/** Positions of every key and value in the file, as a tree that mirrors the raw value. */
interface Loc {
  /** The key of a map entry, or the item of a list. */
  key?: Position;
  value: Position;
  isNull: boolean;
  children: Map<string | number, Loc>;
}

/**
 * Where to point for a problem at `path`: the value, or its key when the value is empty;
 * for a key that is not in the file, the map that should hold it.
 */
function locate(root: Loc, path: KeyPath, at: 'key' | 'value' = 'value'): Position {
  let loc = root;
  for (const part of path) {
    const child = loc.children.get(part);
    if (!child) return loc.value;
    loc = child;
  }
  return (at === 'key' || loc.isNull) && loc.key ? loc.key : loc.value;
}

// Aliases can expand exponentially ("billion laughs"); real cluster.yml files use none.
const MAX_ALIAS_EXPANSIONS = 1000;

class Walk {
  private expansions = 0;
  /** Aliases yaml.v2 would refuse: unknown anchors, too many expansions. */
  readonly problems: ConfigProblem[] = [];

  constructor(
    private readonly document: Document.Parsed,
    private readonly position: (offset: number) => Position,
  ) {}

  private at(node: YamlNode | null | undefined, fallback: Position): Position {
    return node?.range ? this.position(node.range[0]) : fallback;
  }

  convert(node: unknown, loc: Loc, depth = 0): RawValue {
    if (depth > 100) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.document);
      let problem: string | undefined;
      if (!target) problem = `unknown anchor *${node.source}`;
      else if (++this.expansions > MAX_ALIAS_EXPANSIONS) problem = 'too many aliases';
      if (problem) {
        this.problems.push({ path: ['yaml'], message: problem, ...this.at(node, loc.value) });
        return null;
      }
      return this.convert(target, loc, depth + 1);
    }
    if (isScalar(node)) {
      if (node.value === null || node.value === undefined) return null;
      // Source text, as yaml.v2 stores a scalar in a Go string field (0777 stays "0777").
      return typeof node.value === 'string' ? node.value : (node.source ?? String(node.value));
    }
    if (isSeq(node)) {
      return node.items.map((item, index) => {
        const position = this.at(item as YamlNode, loc.value);
        const child: Loc = { key: position, value: position, isNull: false, children: new Map() };
        loc.children.set(index, child);
        const value = this.convert(item, child, depth + 1);
        child.isNull = value === null;
        return value;
      });
    }
    if (isMap(node)) {
      const out: { [key: string]: RawValue } = {};
      for (const pair of node.items) {
        if (isScalar(pair.key) && pair.key.source === '<<' && pair.key.type === 'PLAIN') {
          this.merge(pair.value, out, loc, depth);
          continue;
        }
        if (!isScalar(pair.key) || pair.key.value === null) continue; // complex keys: unused by RKE
        const key = typeof pair.key.value === 'string' ? pair.key.value : (pair.key.source ?? String(pair.key.value));
        const keyPosition = this.at(pair.key, loc.value);
        const child: Loc = { key: keyPosition, value: keyPosition, isNull: false, children: new Map() };
        child.value = this.at(pair.value as YamlNode | null, keyPosition);
        const value = this.convert(pair.value, child, depth + 1);
        child.isNull = value === null;
        // Last duplicate wins, for the value and for the positions below it.
        loc.children.set(key, child);
        setOwn(out, key, value);
      }
      return out;
    }
    return null;
  }

  /** `<<: *anchor` or `<<: [*a, *b]`; with a list, earlier maps win (yaml.v2). */
  private merge(value: unknown, out: { [key: string]: RawValue }, loc: Loc, depth: number): void {
    const sources = isSeq(value) ? [...value.items].reverse() : [value];
    for (const source of sources) {
      const scratch: Loc = { value: loc.value, isNull: false, children: new Map() };
      const merged = this.convert(source, scratch, depth + 1);
      if (merged === null || typeof merged !== 'object' || Array.isArray(merged)) continue;
      for (const [key, item] of Object.entries(merged)) {
        setOwn(out, key, item);
        const child = scratch.children.get(key);
        if (child) loc.children.set(key, child);
      }
    }
  }
}

/** Plain assignment, but safe for a key named `__proto__`. */
function setOwn(target: { [key: string]: RawValue }, key: string, value: RawValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
