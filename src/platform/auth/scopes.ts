/** What an API key may do. Each route names the one scope it needs. */

/** Every scope, in the order they are listed to people. */
export const SCOPES = [
  'manifest:read',
  'subjects:read',
  'subjects:write',
  'collect:write',
  'credentials:verify',
  'consent:read',
  'consent:write',
  'mail:send',
  'mail:events',
  'analytics:read',
  'legal:read',
  'legal:write',
  'legal:review',
  'share:write',
  'requests:submit',
  'requests:read',
  'requests:write',
  'jobs:admin',
  'recipients:admin',
  'log:read',
  'admin',
] as const;

/** A scope an API key can hold. */
export type Scope = (typeof SCOPES)[number];

/** One line per scope, for `pledge keys create --help`, error messages and the OpenAPI document. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<Scope, string>> = {
  'manifest:read': 'read the manifest in force and its past versions',
  'subjects:read': 'read data subjects and their records (decrypted)',
  'subjects:write': 'create, correct and erase data subjects and their records',
  'collect:write': 'submit data through declared collection points',
  'credentials:verify': "check a secret against a person's stored credential verifier (never reads it)",
  'consent:read': "read people's consent decisions and preferences",
  'consent:write': "record and change people's consent decisions",
  'mail:send': 'create marketing campaigns and send them (every message passes the mail pipeline)',
  'mail:events': 'report delivery status notifications and complaints (bounces suppress addresses)',
  'analytics:read': 'read the page-view and beacon aggregates (counts per day; never a visitor)',
  'legal:read': 'read legal requests from authorities (their scope, review and disclosures; never the data)',
  'legal:write':
    'record legal requests from authorities and disclose what a reviewer approved, through the share gate',
  'legal:review': 'approve, narrow, reject and close legal requests (never one the same person recorded)',
  'share:write':
    "disclose people's data to a declared recipient for a purpose through the share gate, and export for a processor (recorded per person)",
  'requests:submit':
    "file a person's data-subject request for them (the person still verifies each identifier by code)",
  'requests:read':
    "read data-subject requests: their status, steps and due dates (never the requester's identifiers)",
  'requests:write':
    'approve, extend, reject and retry data-subject requests, and complete their manual tasks',
  'jobs:admin': 'see the job queue (states, errors, ids; never payloads) and retry dead jobs',
  'recipients:admin':
    "record processors' and affiliates' acknowledgements of the policy, and see their standing, pauses and notices",
  'log:read':
    'read the transparency log: its tiles, entries and proofs (commitments and counts; never personal data)',
  admin: 'everything, including API keys and data subject requests',
};

/**
 * The scopes that manage Pledge itself. An operator key (bound to no system) holds only these: every
 * other scope reads, collects, decides or sends for a person, which only a declared system may do.
 */
export const MANAGEMENT_SCOPES: readonly Scope[] = [
  'manifest:read',
  'jobs:admin',
  'recipients:admin',
  'log:read',
  'admin',
];

/** True when `scope` acts on people's data (needs a key bound to a system). */
export function isDataScope(scope: Scope): boolean {
  return !MANAGEMENT_SCOPES.includes(scope);
}

/** True when `value` names a scope. */
export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

/** True when `granted` allows `required`: it holds that scope or 'admin', which implies every scope. */
export function hasScope(granted: readonly Scope[], required: Scope): boolean {
  return granted.includes('admin') || granted.includes(required);
}
