// Notifications to people's tools: routes file, matching, bodies, the PostgreSQL outbox and its dispatcher, dead letters sent again.
export {
  createDeadLetterResender,
  type DeadLetterResender,
  type ResendRequest,
  resendRequestSchema,
} from "./dead_letter_resend.ts";
export { deadLetterRoutes } from "./dead_letter_routes.ts";
export {
  createNotificationDispatcher,
  messageId,
  type NotificationDispatcher,
  type NotifyStatus,
} from "./notification_dispatcher.ts";
export { jsonBody, notificationBody, slackBody } from "./notification_payload.ts";
export {
  loadNotifyConfig,
  type NotifyConfig,
  NotifyConfigError,
  type NotifyRoute,
  parseNotifyConfig,
} from "./notify_config.ts";
export { createOutboxRepository, type OutboxRepository } from "./outbox_repository.ts";
export {
  backoffMs,
  DEFAULT_RETRY_POLICY,
  RETRYABLE_STATUSES,
  type RetryPolicy,
} from "./retry_policy.ts";
export { routeMatches, shouldNotify, streamGlob } from "./route_match.ts";
export { sendNotification } from "./send_notification.ts";
