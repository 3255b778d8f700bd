// Alerts: built from scored windows, kept durably, delivered with retries.
export {
  AlertDispatcher,
  type AlertDispatcherOptions,
  type DispatchCounts,
} from "./alert_dispatcher.ts";
export {
  type AlertRecord,
  type AlertSender,
  type AlertSenderOptions,
  createAlertSender,
  type DeliveryOutcome,
  type DeliveryResult,
} from "./alert_sender.ts";
export { type BuildAlertOptions, buildAlert } from "./build_alert.ts";
export { Outbox, type OutboxOptions } from "./outbox.ts";
export {
  backoffDelay,
  isRetryableStatus,
  RETRYABLE_STATUSES,
  retryAfterMs,
} from "./retry_policy.ts";
