/**
 * Who acts on a legal request, and the four-eyes rule: every step names a person (a key's holder,
 * or the CLI's `--by`), and the reviewer is never the one who made the intake.
 */
import type { Context } from '../platform/context.js';
import { ForbiddenError } from '../platform/errors.js';
import type { LegalActorRecord } from './legal.repository.js';

/** Who acts, beyond the context: the CLI's `--by`. */
export interface LegalActOptions {
  /** The staff member running the CLI (its `--by NAME`). */
  by?: string | undefined;
}

/**
 * Who acts, as recorded with a step: a system's key (its id and holder), or the CLI (its account
 * and `--by`). Throws `legal.holder_required` for a key without a holder or a CLI run without
 * `--by`, and `legal.actor_unsupported` for anyone else: four eyes need two named people.
 */
export async function whoActs(
  ctx: Context,
  /** Who holds an API key (api_keys.holder). */
  people: { holderOf(ctx: Context, keyId: string): Promise<string | undefined> },
  options: LegalActOptions,
): Promise<LegalActorRecord> {
  const actor = ctx.actor;
  if (actor.kind === 'system' || actor.kind === 'api_key') {
    const key = actor.kind === 'system' ? actor.key : actor.id;
    const holder = (await people.holderOf(ctx, key))?.trim();
    if (holder === undefined || holder === '') {
      throw new ForbiddenError(
        'legal.holder_required',
        `API key ${key} has no holder, so no one can tell whether its reviewer is someone else; legal requests need a key made with \`pledge keys create --holder NAME\``,
        { key },
      );
    }
    return { actor, key, holder };
  }
  if (actor.kind === 'cli') {
    const by = options.by?.trim();
    if (by === undefined || by === '' || by.length > 100) {
      throw new ForbiddenError(
        'legal.holder_required',
        'say who you are with --by NAME (1 to 100 characters): legal requests are reviewed by someone other than who recorded them',
        {},
      );
    }
    return { actor, account: actor.id, holder: by };
  }
  throw new ForbiddenError(
    'legal.actor_unsupported',
    'legal requests are recorded and reviewed by people: a key of a system with a holder, or the CLI with --by',
    { actor: actor.kind },
  );
}

/**
 * Throws `legal.self_review` when the reviewer is the one who made the intake: the same key, the
 * same holder (a person with two keys is still one person), or the same operating-system account.
 */
export function refuseSelfReview(intake: LegalActorRecord, reviewer: LegalActorRecord): void {
  const same: string[] = [];
  if (intake.key !== undefined && intake.key === reviewer.key) same.push('the same API key');
  if (
    intake.holder !== undefined &&
    reviewer.holder !== undefined &&
    normalized(intake.holder) === normalized(reviewer.holder)
  )
    same.push('the same holder');
  if (intake.account !== undefined && intake.account === reviewer.account)
    same.push('the same operating-system account');
  if (same.length > 0) {
    throw new ForbiddenError(
      'legal.self_review',
      `the reviewer of a legal request must be someone other than who recorded it; this review comes from ${same.join(' and ')}. Ask another person with the legal:review scope`,
      { same },
    );
  }
}

function normalized(name: string): string {
  return name.trim().normalize('NFKC').toLowerCase();
}
