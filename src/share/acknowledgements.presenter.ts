/**
 * What leaves the server of a recipient's record: its standing, acknowledgements (who recorded
 * each, the person named, when), pauses and notices (channel and status; never the address).
 */
import type { Acknowledgement, Notice, Pause } from './acknowledgements.repository.js';
import type { RecipientRecord } from './acknowledgements.service.js';
import type { RecipientStandingResult } from './share.types.js';

/** An acknowledgement as the API shows it. */
export function presentAcknowledgement(a: Acknowledgement) {
  return {
    id: a.id,
    recipient: a.recipient,
    policyVersion: a.policyVersion,
    manifestVersion: a.manifestVersionId,
    actor: a.actor,
    acknowledgedBy: a.acknowledgedBy,
    method: a.method,
    acknowledgedAt: a.acknowledgedAt.toISOString(),
  };
}

/** A pause as the API shows it. */
export function presentPause(p: Pause) {
  return {
    id: p.id,
    policyVersion: p.policyVersion,
    manifestVersion: p.manifestVersionId,
    previousManifestVersion: p.previousManifestVersionId,
    changes: p.changes.map((c) => ({ kind: c.kind, path: c.path, summary: c.summary })),
    pausedAt: p.pausedAt.toISOString(),
    liftedAt: p.liftedAt?.toISOString() ?? null,
    liftedBy: p.liftedBy ?? null,
  };
}

/** A notice as the API shows it: where it went by channel, never the address. */
export function presentNotice(n: Notice) {
  return {
    id: n.id,
    pause: n.pauseId,
    channel: n.channel,
    status: n.status,
    attempts: n.attempts,
    lastStatus: n.lastStatus ?? null,
    createdAt: n.createdAt.toISOString(),
    sentAt: n.sentAt?.toISOString() ?? null,
  };
}

/** A standing as the API shows it. */
export function presentStanding(s: RecipientStandingResult) {
  return s.ok
    ? { ok: true, acknowledgedVersion: s.acknowledgedVersion }
    : { ok: false, code: s.code, policyVersion: s.policyVersion, message: s.message };
}

/** A recipient's whole record. */
export function presentRecord(r: RecipientRecord) {
  return {
    recipient: r.recipient,
    standing: presentStanding(r.standing),
    acknowledgements: r.acknowledgements.map(presentAcknowledgement),
    pauses: r.pauses.map(presentPause),
    notices: r.notices.map(presentNotice),
  };
}
