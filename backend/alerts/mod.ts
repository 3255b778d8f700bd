// Alert storage and the alert HTTP API.
export {
  type AlertFilter,
  type AlertPage,
  type AlertRepository,
  type AlertSummary,
  createAlertRepository,
  type NewAlert,
  type StoredAlert,
} from "./alert_repository.ts";
export { alertRoutes } from "./routes.ts";
export { derivedAlertId, toNewAlert } from "./to_new_alert.ts";
