/**
 * The manifest's `datasets:` block: where the company's own stores hold personal data, collection
 * by collection and field by field, as Fides datasets describe it. Pledge reads it for the record
 * of processing and the round trip with Fides, and the connectors of data-subject requests
 * (src/rights/connectors) read it to find and erase a person's data: a dataset's `engine` and
 * `connected`, a field's `identity` (which identifier it holds), `references` (the foreign-key
 * paths from the identity to the other tables) and `erase` action. Fides' own spelling of the same
 * facts (`fides_meta.identity`, `fides_meta.references`, `fides_meta.primary_key`) is accepted
 * unchanged, so a Fides user's datasets work as they are; the helpers below read either spelling.
 */
import { z } from 'zod';

const KEY = /^[a-z][a-z0-9_-]*$/;
const CATEGORY_KEY = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const IDENTITY_KEY = /^[a-z][a-z0-9_]*$/;

const text = () => z.string().trim().min(1, 'must not be empty');

/** The engines a connector can reach. */
export const CONNECTOR_ENGINES = ['postgresql', 'mysql'] as const;
/** A connector's database engine; `mysql` covers MariaDB. */
export type ConnectorEngine = (typeof CONNECTOR_ENGINES)[number];

/** What an erasure does to a field: delete its whole row, set it to NULL, or overwrite it with a mask. */
export const ERASE_ACTIONS = ['delete_row', 'set_null', 'mask'] as const;
/** One of {@link ERASE_ACTIONS}. */
export type EraseAction = (typeof ERASE_ACTIONS)[number];

/**
 * A path from this field to another (Fides' `references`): `field` is `collection.field` in this
 * dataset (or `dataset.collection.field` with `dataset` set), `direction` says which side is known
 * first: `from` (the referenced field's values find rows here, e.g. orders.customer_id from
 * customers.id) or `to` (this field's values find rows there, e.g. customers.address_id to
 * addresses.id). Either way the field holding the reference is the foreign key.
 */
const referenceSchema = z.strictObject({
  dataset: z.string().regex(KEY, 'must be a dataset key').optional(),
  field: z
    .string()
    .regex(
      /^[^.\s]+\.[^.\s]+(\.[^.\s]+)?$/,
      'must be "collection.field" (or "dataset.collection.field"), e.g. "customers.id"',
    ),
  direction: z.enum(['from', 'to']).optional(),
});

/** A field's reference, as {@link referenceSchema} validates it. */
export type DatasetReference = z.infer<typeof referenceSchema>;

/** Fides' `fides_meta` of a field; the keys connectors use are checked, others are kept as given. */
const fieldFidesMetaSchema = z.looseObject({
  identity: z.string().regex(IDENTITY_KEY, 'must be an identity key such as "email"').optional(),
  references: z.array(referenceSchema).optional(),
  primary_key: z.boolean().optional(),
  data_type: z.string().optional(),
});

const datasetFieldSchema = z.strictObject({
  /** The column or property name, as the store spells it. */
  name: text(),
  description: text().optional(),
  /** The categories the field holds; empty when it holds no personal data. */
  data_categories: z
    .array(z.string().regex(CATEGORY_KEY, 'must be a dotted category key such as "user.contact.email"'))
    .default([]),
  /** The identifier kind the field holds (`email`, `phone`, `subject_id`, `external_id`, …). */
  identity: z
    .string()
    .regex(IDENTITY_KEY, 'must be an identity key such as "email", "phone" or "subject_id"')
    .optional(),
  /** The table's primary key (connectors page and erase by it; found in the live schema if absent). */
  primary_key: z.boolean().optional(),
  references: z.array(referenceSchema).optional(),
  /** What an erasure does to this field; absent, the field is left as it is. */
  erase: z.enum(ERASE_ACTIONS).optional(),
  /** The value `erase: mask` writes; default "[erased]". */
  mask: z.string().optional(),
  fides_meta: fieldFidesMetaSchema.optional(),
});

/** One dataset: a database or other store, its collections (tables) and their fields. */
export const datasetSchema = z.strictObject({
  key: z
    .string()
    .regex(KEY, 'must be lower-case letters, digits, "-" or "_", starting with a letter (e.g. "app-db")'),
  name: text(),
  description: text().optional(),
  /** The database engine, when a connector may reach the dataset. */
  engine: z.enum(CONNECTOR_ENGINES).optional(),
  /**
   * Whether Pledge connects to it (its URL then comes from PLEDGE_CONNECTOR_<KEY>_URL); otherwise
   * requests reach it through a webhook or a manual task.
   */
  connected: z.boolean().optional(),
  /** Fides' dataset-level metadata (namespace, after, …), kept as given. */
  fides_meta: z.looseObject({}).optional(),
  data_categories: z.array(z.string()).optional(),
  collections: z
    .array(
      z.strictObject({
        name: text(),
        description: text().optional(),
        fields: z.array(datasetFieldSchema).default([]),
        /** Fides' collection-level metadata (after, erase_after, skip_processing, …), kept as given. */
        fides_meta: z.looseObject({}).optional(),
        data_categories: z.array(z.string()).optional(),
      }),
    )
    .min(1, 'a dataset has at least one collection'),
});

/** A validated dataset. */
export type Dataset = z.infer<typeof datasetSchema>;
/** One collection (table) of a dataset. */
export type DatasetCollection = Dataset['collections'][number];
/** One field (column) of a collection. */
export type DatasetField = DatasetCollection['fields'][number];

/** Fides' `phone_number` and Pledge's `phone` name the same identifier. */
const IDENTITY_ALIASES: Readonly<Record<string, string>> = { phone_number: 'phone' };

/** The identifier kind a field holds, in either spelling; `undefined` when it holds none. */
export function fieldIdentity(f: DatasetField): string | undefined {
  const raw = f.identity ?? f.fides_meta?.identity;
  return raw === undefined ? undefined : (IDENTITY_ALIASES[raw] ?? raw);
}

/** A field's references in either spelling, with where each is written (for problem positions). */
export function fieldReferences(
  f: DatasetField,
): Array<{ ref: DatasetReference; path: Array<string | number> }> {
  return [
    ...(f.references ?? []).map((ref, i) => ({ ref, path: ['references', i] })),
    ...(f.fides_meta?.references ?? []).map((ref, i) => ({ ref, path: ['fides_meta', 'references', i] })),
  ];
}

/** Whether the field is declared as its table's primary key, in either spelling. */
export function isPrimaryKey(f: DatasetField): boolean {
  return f.primary_key ?? f.fides_meta?.primary_key ?? false;
}
