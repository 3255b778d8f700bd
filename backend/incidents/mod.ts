// Incident storage reads, acknowledgements, verdicts, the live hub and the incident HTTP API.
export { requireConsoleToken, TOKEN_COOKIE } from "./console_auth.ts";
export { createIncidentHub, type IncidentHub } from "./incident_hub.ts";
export { createIncidentRepository, type IncidentRepository } from "./incident_repository.ts";
export type * from "./incident_types.ts";
export { incidentIdParam, incidentRoutes, parseAck, parseVerdict } from "./routes.ts";
