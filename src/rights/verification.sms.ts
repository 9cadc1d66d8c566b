/**
 * How a code reaches a phone: an adapter for the declared SMS provider. Pledge ships none for a real
 * provider (each has its own API); without one, a phone number given in a request cannot be
 * verified, so the request does not act on it, and says so. The test adapter records what it would send.
 */
import type { Context } from '../platform/context.js';

/** One text message. */
export interface SmsMessage {
  /** The number in the form the vault normalizes it to (`+4915...`). */
  to: string;
  text: string;
}

/** Sends text messages through the manifest's SMS provider recipient. */
export interface SmsAdapter {
  /** The recipient key of the provider in the manifest (the flow the checker sees). */
  readonly recipient: string;
  send(ctx: Context, message: SmsMessage): Promise<{ sent: boolean }>;
}

/** An adapter for tests and development: keeps each message in memory, sends nothing. */
export class TestSmsAdapter implements SmsAdapter {
  readonly recipient: string;
  readonly messages: SmsMessage[] = [];

  constructor(recipient = 'sms-delivery') {
    this.recipient = recipient;
  }

  /** Records the message. */
  send(_ctx: Context, message: SmsMessage): Promise<{ sent: boolean }> {
    this.messages.push({ ...message });
    return Promise.resolve({ sent: true });
  }
}
