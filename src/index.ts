/**
 * Pledge's public TypeScript API: what a service imports to embed the gates in its own process.
 *
 * ```ts
 * import { createApp, createContext, loadConfig } from 'pledge';
 * const app = await createApp(loadConfig(), { processors: { 'card-processor': myAdapter } });
 * const ctx = createContext({ kind: 'job', id: 'signup' });
 * const { subject } = await app.collect.collect(ctx, 'registration', { data: { email, ... } });
 * ```
 *
 * Everything not exported here is internal and may change without notice.
 */

/** Builds the whole application (database, manifest in force, services, HTTP routes). */
export { createApp } from './app.js';
/** The options and the result of {@link createApp}. */
export type { App, AppOptions } from './app.js';

/** Reads and checks the configuration (environment and overrides), listing every problem at once. */
export { loadConfig, DEFAULT_MANIFEST } from './platform/config.js';
/** Pledge's settings and the command-line overrides of them. */
export type { Config, ConfigOverrides } from './platform/config.js';

/** The context every service method takes first: who acts, which request, what time it is. */
export { createContext } from './platform/context.js';
/** Who acts, and the context itself. */
export type { Actor, Context } from './platform/context.js';
/** Clocks for contexts: the system's, or a fixed one for tests. */
export { systemClock, fixedClock } from './platform/clock.js';
/** A source of the current time. */
export type { Clock } from './platform/clock.js';

/** The error classes; every error Pledge raises on purpose has a stable `code` and an HTTP status. */
export {
  PledgeError,
  ValidationError,
  AuthenticationError,
  ForbiddenError,
  NotFoundError,
  ConflictError,
  ConfigError,
} from './platform/errors.js';
/** Details attached to an error (JSON path, source, field...). */
export type { ErrorDetails } from './platform/errors.js';

/** The vault: encrypted storage of personal data, the use gate, erasure. */
export { Vault, SUBJECT_KINDS, manifestDefaultDecision } from './vault/vault.service.js';
/** What the vault reads and writes. */
export type {
  Decide,
  FieldInput,
  Identifiers,
  NewSubjectInput,
  ReadResult,
  SubjectKind,
  UseDecision,
  UseReason,
  WriteRecordInput,
} from './vault/vault.service.js';
/** A data subject as stored (no personal data). */
export type { Subject } from './vault/subjects.repository.js';
/** The kinds of identifier a subject can be found by. */
export { IDENTIFIER_KINDS } from './vault/identifiers.js';
/** One of {@link IDENTIFIER_KINDS}. */
export type { IdentifierKind } from './vault/identifiers.js';

/** Collection points: registration, billing, surveys, feedback, product events. */
export { CollectService, CARD_TOKEN_CATEGORIES, PRIVACY_POLICY_PATH } from './collect/collect.service.js';
/** What collection points take and answer. */
export type {
  CollectBody,
  CollectEventsBody,
  CollectEventsResult,
  CollectResult,
  CollectServiceDeps,
  DroppedField,
  SourceDefinition,
  SubjectReference,
} from './collect/collect.service.js';
/** The limits of one collection request: of each value, and of the events it carries. */
export { MAX_STRING_LENGTH, MAX_VALUE_DEPTH, MAX_VALUE_NODES } from './collect/collect.fields.js';
export { MAX_EVENTS_PER_REQUEST } from './collect/collect.validator.js';
/** The card processor interface, the built-in test processor and expiry helpers. */
export {
  TestCardProcessor,
  TEST_DECLINED_CARD,
  parseCardExpiry,
  formatCardExpiry,
} from './collect/card-processor.js';
/** What a card processor adapter implements, receives and returns. */
export type { CardDetails, CardExpiry, CardProcessor, CardTokenResult } from './collect/card-processor.js';
/** The card number detector (positions only, never the digits). */
export { findCardNumbers, containsCardNumber, isCardNumber, luhnValid, cardBrand } from './collect/pan.js';
/** A found card number's position and brand. */
export type { CardBrand, CardNumberMatch } from './collect/pan.js';
/** IP address truncation (IPv4 to /24, IPv6 to /48). */
export { truncateIp } from './platform/ip.js';

/** The manifest: parsing with locations, and its types. */
export { parseManifest, loadManifestFile } from './manifest/manifest.loader.js';
/** A validated manifest and its parts. */
export type { Manifest, Pledge, Purpose, Recipient, Source } from './manifest/manifest.schema.js';
/** The manifest in force, with its recorded version and rendered policy. */
export type { ActiveManifest } from './manifest/manifest.service.js';
/** API scopes. */
export { SCOPES } from './platform/auth/scopes.js';
/** One of {@link SCOPES}. */
export type { Scope } from './platform/auth/scopes.js';

/** Consent: the ledger, decisions and their reasons. */
export { ConsentService, MAX_DECISION_BATCH } from './consent/consent.service.js';
/** What recording and deciding take and give. */
export type {
  BatchDecision,
  ConsentChange,
  ConsentEvidence,
  ConsentHolder,
  RecordChoiceInput,
} from './consent/consent.service.js';
/** The decision rules, states, methods and reasons. */
export { CONSENT_METHODS, CONSENT_STATES, GLOBAL_PURPOSE, DecisionRules } from './consent/consent.decide.js';
/** A decision and its reason. */
export type { ConsentMethod, ConsentState, Decision, DecisionReason } from './consent/consent.decide.js';
/** Signed links for unsubscribe and preference pages (the mail pipeline makes them). */
export { createLinkToken, verifyLinkToken, deriveLinkTokenKey } from './consent/link-tokens.js';
/** Verifying Pledge's webhook signatures in a receiver (docs/webhooks.md). */
export {
  verifyWebhookSignature,
  signWebhookPayload,
  SIGNATURE_HEADER,
  DEFAULT_TOLERANCE_SECONDS,
} from './consent/webhooks.signature.js';
/** What a webhook receiver is sent and what verification returns. */
export type {
  VerifyWebhookOptions,
  VerifyWebhookResult,
  WebhookSignatureFailure,
} from './consent/webhooks.signature.js';
export type { WebhookPayload, ConsentChangedData, SubjectErasedData } from './consent/webhooks.service.js';
/** The suppression list (keyed hashes of addresses that must never get marketing again). */
export { SuppressionService, SUPPRESSION_REASONS } from './comms/suppression.service.js';

/** The share gate: disclosures to declared recipients, pass-throughs and exports (docs/sharing.md). */
export {
  ShareService,
  SHARE_CODES,
  MAX_DISCLOSE_SUBJECTS,
  EXPORT_PAGE_SIZE,
  isSale,
  optOutStops,
  recipientCategoriesFor,
} from './share/share.service.js';
/** What a disclosure, a pass-through and an export take and give. */
export type {
  DiscloseResult,
  ExportLine,
  ExportOptions,
  PassThroughField,
  PassThroughGrant,
  ShareCode,
  ShareExport,
  SubjectDisclosure,
  SubjectRefusal,
} from './share/share.service.js';
/** The seams of the share gate: a recipient's standing, a legal request's approved scope. */
export type {
  DiscloseOptions,
  LegalApprovals,
  LegalScope,
  RecipientStanding,
  RecipientStandingResult,
} from './share/share.types.js';
/** Processors' and affiliates' acknowledgements of the policy: their standing, pauses and notices. */
export { AcknowledgementService } from './share/acknowledgements.service.js';
export type {
  AcknowledgeOptions,
  AcknowledgeResult,
  ActivateResult,
  RecipientRecord,
} from './share/acknowledgements.service.js';
export type { Acknowledgement, Notice, Pause, PauseChange } from './share/acknowledgements.repository.js';
/** For a recipient's webhook: the body of a policy notice and its event type (verify with verifyWebhookSignature). */
export { NOTICE_EVENT, deriveRecipientNoticeSecret } from './share/acknowledgements.notices.js';
export type { NoticeWebhookPayload } from './share/acknowledgements.notices.js';
/** Legal requests from authorities: intake, review by someone else, disclosure, notices, the transparency report. */
export { LegalService, noticeHeldUntil } from './share/legal.service.js';
export type {
  LegalActOptions,
  LegalDiscloseInput,
  LegalRequestRecord,
  LegalStatus,
  ListLegalOptions,
  NarrowInput,
} from './share/legal.service.js';
export type { LegalIntakeInput } from './share/legal.validator.js';
export type { TransparencyReport, ReportFigure } from './share/legal.report.js';
export type { LegalRequestView, LegalNoticeView } from './share/legal.presenter.js';
