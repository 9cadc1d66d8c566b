/**
 * The paths of a dataset: which collections a person's identifiers reach, through which declared
 * references, in which order they are read, and in which order an erasure must touch them
 * (children before parents). `pledge check` (dataset.checks.ts) and the connectors
 * (src/rights/connectors) both read a dataset through this one model, so what the check accepts is
 * what the connector does.
 */
import { fieldIdentity, fieldReferences, type Dataset, type DatasetReference } from './dataset.schema.js';
import type { ManifestPath } from './problems.js';

/** A declared reference resolved to two collections of the same dataset. */
export interface DatasetEdge {
  /** The collection whose field holds the reference: the foreign key's table (the child). */
  holder: string;
  holderField: string;
  /** The collection and field it points at (the parent's key). */
  referenced: string;
  referencedField: string;
  /** Which side is read first: `from` (referenced → holder), `to` (holder → referenced), or either. */
  direction: DatasetReference['direction'];
  /** Where the reference is written, from the manifest's root. */
  path: ManifestPath;
}

/** A step of a read: rows of `collection` are found by `field IN (values of source.sourceField)`. */
export interface DatasetHop {
  source: string;
  sourceField: string;
  field: string;
  edge: DatasetEdge;
}

/** A reference that names something the dataset does not have. */
export interface UnresolvedReference {
  path: ManifestPath;
  ref: DatasetReference;
  /** `dataset`: another dataset (connectors do not cross databases); `collection` or `field`: unknown. */
  missing: 'dataset' | 'collection' | 'field';
}

/** The resolved paths of one dataset. */
export interface DatasetGraph {
  edges: DatasetEdge[];
  unresolved: UnresolvedReference[];
  /** Collections holding an identity field, with those fields by identity kind. */
  identities: Map<string, Array<{ field: string; kind: string }>>;
  /** Reached collections in read order (each after every collection it is read from). */
  readOrder: string[];
  /** For each reached collection, the hops that find its rows. */
  hops: Map<string, DatasetHop[]>;
  /** Collections no identity reaches. */
  unreachable: string[];
  /** Collections on a cycle of read hops (none in a usable dataset), with the edges involved. */
  readCycle: DatasetEdge[];
  /** Reached collections in erase order: every foreign key's table before the table it points at. */
  eraseOrder: string[];
  /** Edges on a cycle of foreign keys among reached collections (a self-reference is one). */
  eraseCycle: DatasetEdge[];
}

/** Resolves the paths of dataset `index` of `datasets`; never throws. */
export function datasetGraph(dataset: Dataset, index: number): DatasetGraph {
  const columns = new Map(dataset.collections.map((c) => [c.name, new Set(c.fields.map((f) => f.name))]));
  const edges: DatasetEdge[] = [];
  const unresolved: UnresolvedReference[] = [];
  const identities = new Map<string, Array<{ field: string; kind: string }>>();

  dataset.collections.forEach((c, j) =>
    c.fields.forEach((f, k) => {
      const kind = fieldIdentity(f);
      if (kind !== undefined)
        identities.set(c.name, [...(identities.get(c.name) ?? []), { field: f.name, kind }]);
      for (const { ref, path } of fieldReferences(f)) {
        const at: ManifestPath = ['datasets', index, 'collections', j, 'fields', k, ...path];
        const parts = ref.field.split('.');
        // "dataset.collection.field" names the dataset in the field itself.
        const [refDataset, collection, field] =
          parts.length === 3 ? parts : [ref.dataset ?? dataset.key, parts[0], parts[1]];
        if (refDataset !== dataset.key) {
          unresolved.push({ path: at, ref, missing: 'dataset' });
          continue;
        }
        const target = columns.get(collection ?? '');
        if (target === undefined || collection === undefined) {
          unresolved.push({ path: at, ref, missing: 'collection' });
          continue;
        }
        if (field === undefined || !target.has(field)) {
          unresolved.push({ path: at, ref, missing: 'field' });
          continue;
        }
        edges.push({
          holder: c.name,
          holderField: f.name,
          referenced: collection,
          referencedField: field,
          direction: ref.direction,
          path: at,
        });
      }
    }),
  );

  // Reachability over every edge, both ways for an undirected one, in breadth-first order.
  const depth = new Map<string, number>();
  const queue = [...identities.keys()];
  for (const c of queue) depth.set(c, 0);
  const steps = (e: DatasetEdge): Array<[string, string]> =>
    e.direction === 'from'
      ? [[e.referenced, e.holder]]
      : e.direction === 'to'
        ? [[e.holder, e.referenced]]
        : [
            [e.referenced, e.holder],
            [e.holder, e.referenced],
          ];
  for (let i = 0; i < queue.length; i++) {
    const c = queue[i] as string;
    for (const e of edges)
      for (const [a, b] of steps(e)) {
        if (a === c && !depth.has(b)) {
          depth.set(b, (depth.get(c) ?? 0) + 1);
          queue.push(b);
        }
      }
  }
  const reached = new Set(queue);
  const unreachable = dataset.collections.map((c) => c.name).filter((n) => !reached.has(n));

  // Read hops: a directed edge as declared; an undirected one from the side reached first.
  const hopEdges: Array<{ a: string; b: string; e: DatasetEdge }> = [];
  for (const e of edges) {
    if (!reached.has(e.holder) || !reached.has(e.referenced) || e.holder === e.referenced) continue;
    let [a, b] = steps(e)[0] as [string, string];
    if (e.direction === undefined && (depth.get(e.holder) ?? 0) < (depth.get(e.referenced) ?? 0))
      [a, b] = [e.holder, e.referenced];
    // An undirected edge between two collections at the same depth finds nothing new either way.
    if (e.direction === undefined && depth.get(a) === depth.get(b)) continue;
    hopEdges.push({ a, b, e });
  }
  const read = topological(
    [...reached],
    hopEdges.map((h) => ({ before: h.a, after: h.b, edge: h.e })),
  );
  const hops = new Map<string, DatasetHop[]>();
  for (const h of hopEdges) {
    const hop: DatasetHop =
      h.a === h.e.referenced
        ? { source: h.a, sourceField: h.e.referencedField, field: h.e.holderField, edge: h.e }
        : { source: h.a, sourceField: h.e.holderField, field: h.e.referencedField, edge: h.e };
    hops.set(h.b, [...(hops.get(h.b) ?? []), hop]);
  }

  // Erase order: a foreign key's table before the one it points at (a self-reference is a cycle).
  const fk = edges.filter((e) => reached.has(e.holder) && reached.has(e.referenced));
  const erase = topological(
    [...reached],
    fk.map((e) => ({ before: e.holder, after: e.referenced, edge: e })),
  );
  return {
    edges,
    unresolved,
    identities,
    readOrder: read.order,
    hops,
    unreachable,
    readCycle: read.cycle,
    eraseOrder: erase.order,
    eraseCycle: erase.cycle,
  };
}

/** Kahn's sort keeping the given order among ties; the edges left over form the cycle(s). */
function topological(
  nodes: readonly string[],
  arcs: ReadonlyArray<{ before: string; after: string; edge: DatasetEdge }>,
): { order: string[]; cycle: DatasetEdge[] } {
  const incoming = new Map(nodes.map((n) => [n, 0]));
  for (const a of arcs) incoming.set(a.after, (incoming.get(a.after) ?? 0) + 1);
  const order: string[] = [];
  const done = new Set<string>();
  let progress = true;
  while (progress) {
    progress = false;
    for (const n of nodes) {
      if (done.has(n) || (incoming.get(n) ?? 0) > 0) continue;
      done.add(n);
      order.push(n);
      progress = true;
      for (const a of arcs) if (a.before === n) incoming.set(a.after, (incoming.get(a.after) ?? 0) - 1);
    }
  }
  // What is left is on a cycle or after one; peel off, from the end, whatever leads nowhere left.
  const left = new Set(nodes.filter((n) => !done.has(n)));
  for (let peeled = true; peeled;) {
    peeled = false;
    for (const n of left) {
      if (!arcs.some((a) => a.before === n && left.has(a.after))) {
        left.delete(n);
        peeled = true;
      }
    }
  }
  const cycle = arcs.filter((a) => left.has(a.before) && left.has(a.after)).map((a) => a.edge);
  return { order, cycle };
}
