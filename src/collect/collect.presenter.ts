/**
 * What leaves the server about collections. A collection answers with ids and, for a card, what
 * was kept of it (token, brand, last four digits, expiry): never a value that was sent in, so a
 * response cannot become a second copy of the data. A collection point's definition is public
 * policy text from the manifest.
 */
import type { CollectEventsResult, CollectResult, SourceDefinition } from './collect.service.js';

/** A collection's answer. */
export function presentCollectResult(r: CollectResult) {
  return {
    subject: { id: r.subject.id, created: r.subject.created },
    record: { id: r.record.id },
    ...(r.card
      ? {
          card: {
            token: r.card.token,
            brand: r.card.brand,
            lastFour: r.card.lastFour,
            expiry: r.card.expiry,
          },
        }
      : {}),
  };
}

/** An event batch's answer: the records written and the fields dropped (names and paths only). */
export function presentEventsResult(r: CollectEventsResult) {
  return {
    accepted: r.accepted,
    records: [...r.records],
    dropped: r.dropped.map((d) => ({ index: d.index, field: d.field, path: d.path })),
  };
}

/** A collection point's definition, as a form shows it. */
export function presentSourceDefinition(d: SourceDefinition) {
  return {
    key: d.key,
    name: d.name,
    kind: d.kind,
    voluntary: d.voluntary,
    description: d.description ?? null,
    fields: d.fields.map((f) => ({
      name: f.name,
      category: f.category,
      categoryName: f.categoryName,
      required: f.required,
      description: f.description ?? null,
      passedTo: f.passedTo ? { key: f.passedTo.key, name: f.passedTo.name } : null,
    })),
    purposes: d.purposes.map((p) => ({ key: p.key, name: p.name, description: p.description })),
    retention: { period: d.retention.period, text: d.retention.text },
    notice: d.notice ?? null,
    privacyPolicy: {
      url: d.privacyPolicy.url,
      version: d.privacyPolicy.version,
      effective: d.privacyPolicy.effective,
    },
  };
}
