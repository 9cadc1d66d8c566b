/**
 * What leaves the server about choices. Decisions carry only the subject id, purpose, channel, the
 * outcome, its reason and the channels withdrawn; histories show evidence only to callers holding
 * consent:read.
 */
import type { ChoiceState } from './consent.decide.js';
import type {
  BatchDecision,
  ConsentChange,
  ConsentEvidence,
  ConsentEventView,
  PurposeChoiceView,
} from './consent.service.js';

/** A recorded change. */
export function presentChange(c: ConsentChange): Record<string, unknown> {
  return {
    eventId: c.eventId,
    ...('subjectId' in c.holder ? { subject: c.holder.subjectId } : { browser: c.holder.browserId }),
    purpose: c.purpose,
    channel: c.channel ?? null,
    state: c.state,
    previous: c.previous,
    method: c.method,
    at: c.at.toISOString(),
  };
}

/**
 * A purpose with the holder's choice and the decision, and each of its channels with theirs: the
 * purpose's `allowed` holds only when every channel allows it (see consent.decide.ts).
 */
export function presentPurposeChoice(v: PurposeChoiceView): Record<string, unknown> {
  return {
    purpose: v.purpose.key,
    name: v.purpose.name,
    optional: v.optional,
    choice: presentChoice(v.choice),
    allowed: v.decision.allowed,
    reason: v.decision.reason,
    withdrawnChannels: [...(v.decision.withdrawnChannels ?? [])],
    channels: v.channels.map((c) => ({
      channel: c.channel,
      choice: presentChoice(c.choice),
      allowed: c.decision.allowed,
      reason: c.decision.reason,
    })),
  };
}

function presentChoice(c: ChoiceState | undefined): Record<string, unknown> | null {
  return c ? { state: c.state, method: c.method, at: c.at.toISOString() } : null;
}

/** An event of the ledger. */
export function presentEvent(e: ConsentEventView): Record<string, unknown> {
  return {
    id: e.id,
    purpose: e.purpose,
    channel: e.channel ?? null,
    state: e.state,
    method: e.method,
    noticeVersion: e.noticeVersion ?? null,
    policyVersionId: e.policyVersionId,
    jurisdiction: e.jurisdiction ?? null,
    at: e.at.toISOString(),
    evidence: e.evidence ? presentEvidence(e.evidence) : null,
    mergedFrom: e.mergedFrom ?? null,
  };
}

/**
 * Evidence as proof of consent: user agent and truncated IP always (null when not given); the
 * banner's language, control and GPC signal when the choice was made there.
 */
function presentEvidence(e: ConsentEvidence): Record<string, unknown> {
  return {
    userAgent: e.userAgent ?? null,
    ip: e.ip ?? null,
    ...(e.language !== undefined ? { language: e.language } : {}),
    ...(e.control !== undefined ? { control: e.control } : {}),
    ...(e.gpc !== undefined ? { gpc: e.gpc } : {}),
  };
}

/**
 * The answer to a batch of decisions as UTF-8 JSON:
 * `{ purpose, channel, decisions: [{ subject, allowed, reason }, ...] }`, for each subject its id,
 * whether the purpose may use its data, and why; nothing else. Written straight into one buffer
 * because a batch is up to 10,000 people: an object per person, a generic serializer and the
 * strings in between were a third of the batch's time and most of its garbage (and garbage
 * collections are what made the slowest batches slow).
 */
export function presentBatchDecisionsJson(
  purpose: string,
  channel: string | undefined,
  subjects: readonly string[],
  decisions: readonly BatchDecision[],
): Buffer {
  const head = Buffer.from(
    `{"purpose":${JSON.stringify(purpose)},"channel":${JSON.stringify(channel ?? null)},"decisions":[`,
  );
  // First pass: the exact size. Subject ids are plain ASCII (UUIDs) and copied byte by byte; any
  // other string is written as JSON.stringify writes it.
  let size = head.length + 2 + Math.max(0, subjects.length - 1);
  let escaped: Map<number, string> | undefined;
  for (let i = 0; i < subjects.length; i++) {
    const subject = subjects[i]!;
    const d = decisions[i]!;
    if (isPlainAscii(subject)) size += subject.length + 2;
    else {
      const literal = JSON.stringify(subject);
      (escaped ??= new Map()).set(i, literal);
      size += Buffer.byteLength(literal);
    }
    size += SUBJECT_OPEN.length + decisionTail(d).length;
  }
  // Zero-filled, and cut at what was written: a miscount can never send memory it did not write.
  const out = Buffer.alloc(size);
  let at = head.copy(out, 0);
  for (let i = 0; i < subjects.length; i++) {
    if (i > 0) out[at++] = COMMA;
    at += SUBJECT_OPEN.copy(out, at);
    const literal = escaped?.get(i);
    if (literal !== undefined) at += out.write(literal, at);
    else {
      const subject = subjects[i]!;
      out[at++] = QUOTE;
      for (let k = 0; k < subject.length; k++) out[at++] = subject.charCodeAt(k);
      out[at++] = QUOTE;
    }
    const d = decisions[i]!;
    at += decisionTail(d).copy(out, at);
  }
  out[at++] = CLOSE_BRACKET;
  out[at++] = CLOSE_BRACE;
  return out.subarray(0, at);
}

const SUBJECT_OPEN = Buffer.from('{"subject":');
const COMMA = 0x2c;
const QUOTE = 0x22;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;

/**
 * `,"allowed":…,"reason":"…"}` by outcome and reason, made once each (there are a dozen reasons),
 * with `"withdrawnChannels":[…]` when the decision names some (by the channels, as few as a
 * purpose has).
 */
const TAILS = { allowed: new Map<string, Buffer>(), denied: new Map<string, Buffer>() };

function decisionTail(d: BatchDecision): Buffer {
  const tails = d.allowed ? TAILS.allowed : TAILS.denied;
  const withdrawn = 'withdrawnChannels' in d ? d.withdrawnChannels : undefined;
  const key = withdrawn === undefined ? d.reason : `${d.reason}\u0000${withdrawn.join('\u0000')}`;
  let tail = tails.get(key);
  if (tail === undefined) {
    const channels = withdrawn === undefined ? '' : `,"withdrawnChannels":${JSON.stringify(withdrawn)}`;
    tail = Buffer.from(`,"allowed":${d.allowed},"reason":${JSON.stringify(d.reason)}${channels}}`);
    tails.set(key, tail);
  }
  return tail;
}

/** True when every character is printable ASCII that JSON does not escape (no quote, no backslash). */
function isPlainAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) return false;
  }
  return true;
}
