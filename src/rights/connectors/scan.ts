/**
 * `pledge connectors scan`: a proposed dataset block from a live schema, to edit by hand. Tables
 * and columns as they are, primary keys, foreign keys as references, and for columns named like
 * personal data (email, phone, name, address, ip, …) a suggested category, an identity for e-mail
 * and phone columns, and no erase action: what to erase is a decision the proposal leaves to people.
 */
import type { Dataset, DatasetField } from '../../manifest/dataset.schema.js';
import type { ConnectorEngine } from '../../manifest/dataset.schema.js';
import type { LiveTable } from './connector.js';

/** Column-name patterns and the category (and identity) they suggest, the first match winning. */
const SUGGESTIONS: ReadonlyArray<{ pattern: RegExp; category: string; identity?: string }> = [
  { pattern: /e_?mail/, category: 'user.contact.email', identity: 'email' },
  { pattern: /phone|mobile|^tel$|telephone/, category: 'user.contact.phone_number', identity: 'phone' },
  { pattern: /first_?name|given_?name/, category: 'user.name.first' },
  { pattern: /last_?name|family_?name|surname/, category: 'user.name.last' },
  { pattern: /(^|_)(full_?)?name$/, category: 'user.name' },
  { pattern: /street|address_?line|^address$/, category: 'user.contact.address.street' },
  { pattern: /city|town/, category: 'user.contact.address.city' },
  { pattern: /zip|postal|postcode/, category: 'user.contact.address.postal_code' },
  { pattern: /^state$|region|province/, category: 'user.contact.address.state' },
  { pattern: /country/, category: 'user.contact.address.country' },
  { pattern: /(^|_)ip(_address)?$|ip_addr/, category: 'user.device.ip_address' },
  { pattern: /birth|^dob$/, category: 'user.demographic.date_of_birth' },
  { pattern: /gender|^sex$/, category: 'user.demographic.gender' },
  { pattern: /password|passwd/, category: 'user.authorization.password' },
  { pattern: /username|login/, category: 'user.account.username' },
];

/** The suggestion for a column name, if it looks like personal data. */
export function suggestFor(column: string): { category: string; identity?: string } | undefined {
  const name = column.toLowerCase();
  return SUGGESTIONS.find((s) => s.pattern.test(name));
}

/** A dataset key from a database name: lower case, `-` for anything else, starting with a letter. */
function keyOf(database: string): string {
  const k = database
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z]+/, '');
  return k === '' ? 'scanned-db' : k;
}

/** The proposed dataset for the live tables of database `database`. */
export function proposeDataset(
  database: string,
  engine: ConnectorEngine,
  tables: ReadonlyMap<string, LiveTable>,
): Dataset {
  const identityTables = new Set(
    [...tables].filter(([, t]) => [...t.columns.keys()].some((c) => suggestFor(c)?.identity)).map(([n]) => n),
  );
  const collections = [...tables.keys()].sort().map((name) => {
    const t = tables.get(name) as LiveTable;
    const fields = [...t.columns.keys()].map((column): DatasetField => {
      type Direction = 'to' | 'from';
      const s = suggestFor(column);
      const refs = t.foreignKeys
        .filter((f) => f.column === column)
        .map((f): { field: string; direction: Direction } => ({
          field: `${f.table}.${f.referencedColumn}`,
          // Found from the parent, unless only this side holds an identifier.
          direction: identityTables.has(name) && !identityTables.has(f.table) ? 'to' : 'from',
        }));
      return {
        name: column,
        data_categories: s === undefined ? [] : [s.category],
        ...(s?.identity === undefined ? {} : { identity: s.identity }),
        ...(t.primaryKey.length === 1 && t.primaryKey[0] === column ? { primary_key: true } : {}),
        ...(refs.length > 0 ? { references: refs } : {}),
      };
    });
    return { name, fields };
  });
  return {
    key: keyOf(database),
    name: database,
    description: `Proposed by pledge connectors scan; review each category, add erase: actions, then set connected: true.`,
    engine,
    connected: false,
    collections,
  };
}
