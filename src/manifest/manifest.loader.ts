/**
 * Reads a manifest: YAML with positions, then the schema. Every problem is reported at once, each
 * with its file:line:column, so one run of `pledge check` shows a writer everything to fix.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { manifestSchema, type Manifest } from './manifest.schema.js';
import {
  formatPath,
  suggest,
  type ManifestPath,
  type ManifestProblem,
  type SourceLocation,
} from './problems.js';

/** Finds where a path of the manifest data is written in the file. */
export interface Locator {
  /** The value at `path`, or the nearest written ancestor when the path is absent. */
  locate(path: ManifestPath): SourceLocation;
  /** The key of the last segment of `path` (`retenton:` itself rather than its value). */
  locateKey(path: ManifestPath): SourceLocation;
}

/** The outcome of reading a manifest: the manifest when it is valid, and every problem found. */
export interface LoadResult {
  file: string;
  manifest?: Manifest;
  /** The raw data, when the YAML parsed, even if the schema rejected it. */
  data?: unknown;
  problems: ManifestProblem[];
  locator: Locator;
  /** SHA-256 of the file's bytes, to tell policy versions apart. */
  hash: string;
  /** True when the file could not be read or is not YAML at all (exit code 2). */
  unreadable: boolean;
}

/** Reads and validates a manifest file. Never throws for bad input; problems are in the result. */
export async function loadManifestFile(file: string): Promise<LoadResult> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    const location = { file, line: 1, column: 1 };
    return {
      file,
      problems: [
        {
          code: 'manifest.unreadable',
          message: `cannot read the manifest: ${reason}`,
          hint: 'pass the path of a pledge.yaml file, or set PLEDGE_MANIFEST',
          path: [],
          location,
        },
      ],
      locator: { locate: () => location, locateKey: () => location },
      hash: '',
      unreadable: true,
    };
  }
  return parseManifest(source, file);
}

/** Validates manifest text. `file` is only used to name locations. */
export function parseManifest(source: string, file = 'pledge.yaml'): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const hash = createHash('sha256').update(source).digest('hex');
  const locator = makeLocator(doc, lineCounter, file);
  const at = (offset: number): SourceLocation => {
    const pos = lineCounter.linePos(offset);
    return { file, line: pos.line, column: pos.col };
  };

  if (doc.errors.length > 0) {
    return {
      file,
      hash,
      locator,
      unreadable: true,
      problems: doc.errors.map((e) => ({
        code: e.code === 'DUPLICATE_KEY' ? 'manifest.duplicate_key' : 'manifest.syntax',
        message: firstLine(e.message),
        hint:
          e.code === 'DUPLICATE_KEY'
            ? 'a key may appear once in a mapping: merge the two entries'
            : 'fix the YAML syntax at this position (indentation, a missing ":" or an unclosed quote)',
        path: [],
        location: at(e.pos[0]),
      })),
    };
  }

  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return {
      file,
      hash,
      locator,
      unreadable: true,
      data,
      problems: [
        {
          code: 'manifest.not_a_mapping',
          message: 'the manifest must be a YAML mapping with keys such as organization, policy and purposes',
          hint: 'start from examples/example-online/pledge.yaml',
          path: [],
          location: { file, line: 1, column: 1 },
        },
      ],
    };
  }

  const parsed = manifestSchema.safeParse(data, { reportInput: true });
  if (parsed.success) {
    const problems = duplicateKeyProblems(parsed.data, locator);
    return {
      file,
      hash,
      locator,
      data,
      problems,
      manifest: problems.length === 0 ? parsed.data : undefined,
      unreadable: false,
    };
  }
  const problems = parsed.error.issues.flatMap((issue) => issueToProblems(issue, locator));
  return { file, hash, locator, data, problems, unreadable: false };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

type Issue = z.core.$ZodIssue;

function issueToProblems(issue: Issue, locator: Locator): ManifestProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const where = formatPath(path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => {
        const allowed = allowedKeysAt(path);
        const guess = suggest(k, allowed);
        return {
          code: 'manifest.unknown_key',
          message: `unknown key "${k}" in ${where}${guess ? ` (did you mean "${guess}"?)` : ''}`,
          hint: guess
            ? `rename "${k}" to "${guess}"`
            : `remove "${k}"; the keys allowed here are: ${allowed.join(', ')}`,
          path: [...path, k],
          location: locator.locateKey([...path, k]),
        };
      });
    case 'invalid_type': {
      if (issue.input === undefined) {
        const name = path[path.length - 1];
        return [
          {
            code: 'manifest.missing_key',
            message: `${where} is required but missing`,
            hint: `add "${String(name)}:" (${issue.expected}) here`,
            path,
            location: locator.locateKey(path),
          },
        ];
      }
      return [
        {
          code: 'manifest.invalid_type',
          message: `${where} must be ${article(issue.expected)}, not ${describeValue(issue.input)}`,
          hint: `write ${article(issue.expected)} here`,
          path,
          location: locator.locate(path),
        },
      ];
    }
    case 'invalid_value': {
      const options = issue.values.map(String);
      const input = (issue as { input?: unknown }).input;
      const guess = typeof input === 'string' ? suggest(input, options) : undefined;
      return [
        {
          code: 'manifest.invalid_value',
          message: `${where} is ${describeValue(input)}${guess ? ` (did you mean "${guess}"?)` : ''}`,
          hint: `use one of: ${options.join(', ')}`,
          path,
          location: locator.locate(path),
        },
      ];
    }
    case 'too_small':
      return [
        {
          code: 'manifest.too_small',
          message: `${where} ${issue.message.startsWith('Too small') ? `needs at least ${String(issue.minimum)} entr${issue.minimum === 1 ? 'y' : 'ies'}` : issue.message}`,
          hint: 'add the missing entries',
          path,
          location: locator.locate(path),
        },
      ];
    default:
      return [
        {
          code: 'manifest.invalid_value',
          message: `${where} ${issue.message}`,
          hint: 'see docs/manifest.md for the form this value takes',
          path,
          location: locator.locate(path),
        },
      ];
  }
}

function article(expected: string): string {
  if (expected === 'array') return 'a list';
  if (expected === 'object') return 'a mapping';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function describeValue(v: unknown): string {
  if (v === null) return 'empty (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v}"`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v;
}

/** Lists whose entries are identified by `key`; two entries with one key are an error. */
const KEYED_LISTS = [
  'categories',
  'purposes',
  'sources',
  'recipients',
  'systems',
  'choices',
  'pledges',
  'webhooks',
  'datasets',
] as const;

function duplicateKeyProblems(m: Manifest, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const lists: Array<[ManifestPath, Array<{ key: string }>]> = [
    ...KEYED_LISTS.map((l): [ManifestPath, Array<{ key: string }>] => [[l], m[l]]),
    [['organization', 'affiliates'], m.organization.affiliates],
    [['organization', 'certifications'], m.organization.certifications],
    [['organization', 'transfer_mechanisms'], m.organization.transfer_mechanisms],
    [['requests', 'deadlines'], m.requests?.deadlines ?? []],
    [['requests', 'calendars'], m.requests?.calendars ?? []],
  ];
  for (const [base, entries] of lists) {
    const seen = new Map<string, number>();
    entries.forEach((e, i) => {
      const first = seen.get(e.key);
      if (first === undefined) {
        seen.set(e.key, i);
        return;
      }
      const firstPath = [...base, first, 'key'];
      problems.push({
        code: 'manifest.duplicate_entry',
        message: `${formatPath(base)} declares "${e.key}" twice`,
        hint: 'give each entry its own key, or merge the two',
        path: [...base, i, 'key'],
        location: locator.locate([...base, i, 'key']),
        related: [{ message: 'first declared here', path: firstPath, location: locator.locate(firstPath) }],
      });
    });
  }
  return problems;
}

function makeLocator(doc: Document, lineCounter: LineCounter, file: string): Locator {
  const at = (offset: number | undefined): SourceLocation => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { file, line: pos.line, column: pos.col };
  };
  /** Walks as deep as the document goes; returns the node and the pair holding it. */
  const walk = (path: ManifestPath) => {
    let node: unknown = doc.contents;
    let pairKey: unknown;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(part),
        );
        if (!pair) return { node, pairKey, complete: false };
        pairKey = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof part === 'number' && node.items[part] !== undefined) {
        pairKey = undefined;
        node = node.items[part];
      } else {
        return { node, pairKey, complete: false };
      }
    }
    return { node, pairKey, complete: true };
  };
  const rangeStart = (n: unknown): number | undefined => (n as Node | undefined)?.range?.[0];
  return {
    locate(path) {
      const { node, pairKey } = walk(path);
      return at(rangeStart(node) ?? rangeStart(pairKey));
    },
    locateKey(path) {
      const { node, pairKey, complete } = walk(path);
      if (complete && pairKey) return at(rangeStart(pairKey));
      return at(rangeStart(node));
    },
  };
}

/** The keys an object in the manifest accepts at `path`, for "did you mean" suggestions. */
function allowedKeysAt(path: ManifestPath): string[] {
  let schema: unknown = manifestSchema;
  for (const part of path) {
    schema = unwrap(schema);
    const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return [];
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[String(part)];
    else if (def.type === 'array') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else return [];
  }
  const def = (unwrap(schema) as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : [];
}

function unwrap(schema: unknown): unknown {
  let s = schema;
  for (;;) {
    const def = (s as { _zod?: { def?: { type?: string; innerType?: unknown; in?: unknown } } })._zod?.def;
    if (!def) return s;
    if (
      def.type === 'optional' ||
      def.type === 'default' ||
      def.type === 'nullable' ||
      def.type === 'prefault'
    ) {
      s = def.innerType;
    } else if (def.type === 'pipe') {
      s = def.in;
    } else return s;
  }
}
