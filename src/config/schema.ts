/**
 * The zod schema for the subset of cluster.yml that rke-ts reads.
 *
 * Input is the raw tree built by read.ts from the YAML document: maps, lists, `null`, and
 * scalars kept as their source text. That mirrors gopkg.in/yaml.v2 decoding into RKE's Go
 * structs: a string field receives the scalar as written (`port: 22` → "22",
 * `kubernetes_version: 1.10` → "1.10"), while bool and int fields are parsed here.
 *
 * Unknown keys are stripped silently (RKE files carry many keys rke-ts does not use).
 * Empty strings count as "not set", because `rke config` writes `""` for every unset field.
 *
 * Messages never quote the value of a secret field (ssh_key, password, secret_key, …):
 * text fields only ever report the *kind* of value they got.
 */
import { z } from 'zod';
import { ROLES, type Role } from './types.js';

/** cluster.yml after the YAML walk: scalars are source text, empty values are null. */
export type RawValue = null | string | RawValue[] | { [key: string]: RawValue };

type Ctx = z.core.$RefinementCtx;

export const ROLE_LIST = ROLES.join(', ');

/** What kind of value this is, for messages ("got a list"). Never the value itself. */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return 'a single value';
}

/** A non-secret value for a message: quoted text, or its kind. */
function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : kindOf(value);
}

/**
 * Report a problem. `path` is appended to the current path (it is shown in the message);
 * `locate` is appended only to find the line:column (e.g. the bad item inside `role:`).
 */
function fail(ctx: Ctx, message: string, extra?: { path?: PropertyKey[]; locate?: PropertyKey[] }): void {
  ctx.addIssue({
    code: 'custom',
    message,
    ...(extra?.path ? { path: extra.path } : {}),
    ...(extra?.locate ? { params: { locate: extra.locate } } : {}),
  });
}

function isEmpty(value: unknown): value is null | undefined | '' {
  return value === null || value === undefined || value === '';
}

/** A string field. `required` is the message when it is missing or empty. */
export function text(required?: string) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): string | undefined => {
      if (typeof value === 'string' && value !== '') return value;
      if (isEmpty(value)) {
        if (required) fail(ctx, required);
        return undefined;
      }
      fail(ctx, `expected a single value, got ${kindOf(value)}`);
      return undefined;
    });
}

/** An SSH port: "22" or 22 (RKE keeps it as a string), 1–65535. */
export function port() {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): number | undefined => {
      if (isEmpty(value)) return undefined;
      const n = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : NaN;
      if (n >= 1 && n <= 65535) return n;
      fail(ctx, `invalid port ${show(value)} (expected a number from 1 to 65535)`);
      return undefined;
    });
}

// YAML 1.1 booleans, as gopkg.in/yaml.v2 resolves them.
const TRUE = new Set(['true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'y', 'Y', 'on', 'On', 'ON']);
const FALSE = new Set(['false', 'False', 'FALSE', 'no', 'No', 'NO', 'n', 'N', 'off', 'Off', 'OFF']);

/** A bool field; null or empty means "not set" (Go's zero value or a nil *bool). */
export function flag() {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): boolean | undefined => {
      if (isEmpty(value)) return undefined;
      if (typeof value === 'string' && TRUE.has(value)) return true;
      if (typeof value === 'string' && FALSE.has(value)) return false;
      fail(ctx, `expected true or false, got ${show(value)}`);
      return undefined;
    });
}

/** A non-negative whole number (hours, seconds, a count, a uid). */
export function count() {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): number | undefined => {
      if (isEmpty(value)) return undefined;
      if (typeof value === 'string' && /^\+?\d{1,9}$/.test(value)) return Number(value);
      fail(ctx, `expected a whole number (0 or more), got ${show(value)}`);
      return undefined;
    });
}

/** A list of strings (extra_env, extra_binds, external_urls); a single value is a one-item list. */
export function textList() {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): string[] => {
      if (isEmpty(value)) return [];
      if (typeof value === 'string') return [value];
      if (!Array.isArray(value)) {
        fail(ctx, `expected a list, got ${kindOf(value)}`);
        return [];
      }
      const out: string[] = [];
      value.forEach((item, i) => {
        if (typeof item === 'string') {
          if (item !== '') out.push(item);
        } else if (item !== null) {
          fail(ctx, `expected a single value, got ${kindOf(item)}`, { path: [i] });
        }
      });
      return out;
    });
}

/** A map of strings (extra_args, labels). Numbers and bools arrive as text already. */
export function textMap() {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): Record<string, string> => {
      if (isEmpty(value)) return {};
      if (typeof value !== 'object' || Array.isArray(value)) {
        fail(ctx, `expected a map, got ${kindOf(value)}`);
        return {};
      }
      const out: Record<string, string> = {};
      for (const [key, item] of Object.entries(value as Record<string, RawValue>)) {
        if (item === null || typeof item === 'string') {
          out[key] = item ?? '';
        } else {
          fail(ctx, `expected a single value, got ${kindOf(item)}`, { path: [key] });
        }
      }
      return out;
    });
}

const MISSING_ROLE = `missing role (every node needs at least one of ${ROLE_LIST})`;

/** `role:` as a list, a flow list or a single string. */
export function roles() {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): Role[] => {
      if (isEmpty(value) || (Array.isArray(value) && value.length === 0)) {
        fail(ctx, MISSING_ROLE);
        return [];
      }
      const items = Array.isArray(value) ? value : [value];
      const out: Role[] = [];
      items.forEach((item, i) => {
        const locate = Array.isArray(value) ? [i] : [];
        if (typeof item === 'string' && (ROLES as readonly string[]).includes(item)) {
          if (!out.includes(item as Role)) out.push(item as Role);
        } else if (typeof item === 'string' || item === null) {
          fail(ctx, `unknown role ${show(item ?? '')} (expected ${ROLE_LIST})`, { locate });
        } else {
          fail(ctx, `expected a role name (${ROLE_LIST}), got ${kindOf(item)}`, { locate });
        }
      });
      return out;
    });
}

function mapError(what: string) {
  return {
    error: (issue: { code?: string; input?: unknown }) =>
      issue.code === 'invalid_type' ? `expected ${what}, got ${kindOf(issue.input)}` : undefined,
  };
}

/** A map that may be absent or null (then it is `{}`), e.g. `services.etcd:` with only comments. */
function section<S extends z.core.$ZodLooseShape>(shape: S, what = 'a map of settings') {
  return z.preprocess((value) => value ?? {}, z.object(shape, mapError(what)));
}

/** A map whose absence means something (backup_config, s3backupconfig): null → undefined. */
function optionalSection<S extends z.core.$ZodLooseShape>(shape: S, what = 'a map of settings') {
  return z.preprocess((value) => value ?? undefined, z.object(shape, mapError(what)).optional());
}

function list<T extends z.core.SomeType>(item: T, what: string, min?: string) {
  const array = z.array(item, mapError(what));
  return z.preprocess((value) => value ?? [], min ? array.min(1, min) : array);
}

// The shapes are exported so validate.ts can tell a misspelled key from an unused one.

export const nodeShape = {
  address: text('missing address (every node needs a host to connect to)'),
  port: port(),
  internal_address: text(),
  role: roles(),
  hostname_override: text(),
  user: text('missing user (the SSH user to connect as)'),
  docker_socket: text(),
  ssh_key: text(),
  ssh_key_path: text(),
  ssh_cert: text(),
  ssh_cert_path: text(),
  ssh_agent_auth: flag(),
  labels: textMap(),
  taints: z.unknown().optional(),
};

export const bastionShape = {
  address: text(),
  port: port(),
  user: text(),
  ssh_key: text(),
  ssh_key_path: text(),
  ssh_cert: text(),
  ssh_cert_path: text(),
  ignore_proxy_env_vars: flag(),
};

export const s3Shape = {
  access_key: text(),
  secret_key: text(),
  bucket_name: text(),
  region: text(),
  endpoint: text(),
  custom_ca: text(),
  folder: text(),
};

export const backupShape = {
  enabled: flag(),
  interval_hours: count(),
  retention: count(),
  safe_timestamp: flag(),
  timeout: count(),
  s3backupconfig: optionalSection(s3Shape),
};

export const etcdShape = {
  image: text(),
  extra_args: textMap(),
  extra_env: textList(),
  extra_binds: textList(),
  external_urls: textList(),
  ca_cert: text(),
  cert: text(),
  key: text(),
  path: text(),
  uid: count(),
  gid: count(),
  snapshot: flag(),
  creation: text(),
  retention: text(),
  backup_config: optionalSection(backupShape),
};

// Only etcd is modelled; other services are accepted without a look.
export const servicesShape = { etcd: section(etcdShape) };

export const registryShape = {
  url: text(),
  user: text(),
  password: text(),
  is_default: flag(),
  ecr_credential_plugin: z.unknown().optional(),
};

export const systemImagesShape = { etcd: text(), alpine: text(), cert_downloader: text() };

export const clusterShape = {
  nodes: list(
    z.object(nodeShape, mapError('a map describing the node (address, user, role)')),
    'a list of nodes',
    'no nodes defined (at least one node is needed)',
  ),
  services: section(servicesShape),
  ssh_key_path: text(),
  ssh_cert_path: text(),
  ssh_agent_auth: flag(),
  ignore_docker_version: flag(),
  bastion_host: section(bastionShape),
  cluster_name: text(),
  kubernetes_version: text(),
  prefix_path: text(),
  private_registries: list(z.object(registryShape, mapError('a map describing the registry')), 'a list of registries'),
  system_images: section(systemImagesShape),
};

export const clusterSchema = z.object(clusterShape, mapError('a map of cluster settings'));

export type ClusterInput = z.output<typeof clusterSchema>;
