/**
 * The logger of one request, as Fastify's `childLoggerFactory` hands it out: the pino child that
 * carries the request id is made on the first line the request actually logs. Fastify asks for a
 * child on every request, and pino builds it eagerly: it stringifies the bindings through the
 * redaction of log.ts and rebuilds its formatters, a few microseconds per request; at the levels
 * servers run at, most requests never write a line.
 */
import type { FastifyBaseLogger } from 'fastify';

type Bindings = Record<string, unknown>;
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1];
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** What a pino logger adds to Fastify's interface, used when present. */
interface LevelAware {
  isLevelEnabled?: (level: string) => boolean;
}

/**
 * A `childLoggerFactory`: the child of `logger` with `bindings` (the request id), made when first
 * needed. Options (a route's own level or serializers) make the child at once.
 */
export function lazyChildLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildOptions,
): FastifyBaseLogger {
  if (hasOwnKeys(options)) return logger.child(bindings, options);
  return new LazyChildLogger(logger, bindings);
}

/** True when `options` sets anything (Fastify passes `{}` for a route with no options). */
function hasOwnKeys(options: ChildOptions): boolean {
  if (options === undefined) return false;
  for (const key in options) if (Object.hasOwn(options, key)) return true;
  return false;
}

/** Logs through `parent.child(bindings)`, made on the first call at an enabled level. */
class LazyChildLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger & LevelAware;
  readonly #bindings: Bindings;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  fatal(...args: unknown[]): void {
    this.#log('fatal', args);
  }

  error(...args: unknown[]): void {
    this.#log('error', args);
  }

  warn(...args: unknown[]): void {
    this.#log('warn', args);
  }

  info(...args: unknown[]): void {
    this.#log('info', args);
  }

  debug(...args: unknown[]): void {
    this.#log('debug', args);
  }

  trace(...args: unknown[]): void {
    this.#log('trace', args);
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #log(level: Level, args: unknown[]): void {
    let target = this.#child;
    if (target === undefined) {
      // Below the parent's level nothing is written, and nothing needs making.
      if (this.#parent.isLevelEnabled?.(level) === false) return;
      target = this.#real();
    }
    Reflect.apply(target[level], target, args);
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings));
  }
}
