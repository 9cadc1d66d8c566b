/**
 * The few webhook values the CLI needs when it builds its options: kept apart so `pledge check`
 * and the other commands do not load the database stack to show `pledge webhooks --help`.
 */

/** Where a delivery stands. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The most deliveries one page of the log holds. */
export const MAX_DELIVERIES_PAGE = 500;
