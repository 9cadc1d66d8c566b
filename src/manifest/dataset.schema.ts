/**
 * The manifest's `datasets:` block: where the company's own stores hold personal data, collection
 * by collection and field by field, as Fides datasets describe it. Pledge reads it for the record
 * of processing and the round trip with Fides, and the connectors of data-subject requests will
 * read it to find a person's data. Deliberately minimal: Fides' `fides_meta`, nested fields and
 * dataset- or collection-level categories are not kept (`pledge import fides` says so).
 */
import { z } from 'zod';

const KEY = /^[a-z][a-z0-9_-]*$/;
const CATEGORY_KEY = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;

const text = () => z.string().trim().min(1, 'must not be empty');

const datasetFieldSchema = z.strictObject({
  /** The column or property name, as the store spells it. */
  name: text(),
  description: text().optional(),
  /** The categories the field holds; empty when it holds no personal data. */
  data_categories: z
    .array(z.string().regex(CATEGORY_KEY, 'must be a dotted category key such as "user.contact.email"'))
    .default([]),
});

/** One dataset: a database or other store, its collections (tables) and their fields. */
export const datasetSchema = z.strictObject({
  key: z
    .string()
    .regex(KEY, 'must be lower-case letters, digits, "-" or "_", starting with a letter (e.g. "app-db")'),
  name: text(),
  description: text().optional(),
  collections: z
    .array(
      z.strictObject({
        name: text(),
        description: text().optional(),
        fields: z.array(datasetFieldSchema).default([]),
      }),
    )
    .min(1, 'a dataset has at least one collection'),
});

/** A validated dataset. */
export type Dataset = z.infer<typeof datasetSchema>;
