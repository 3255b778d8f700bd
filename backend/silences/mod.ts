// Maintenance silences: storage, validation, matching incidents, and the HTTP API.

export { silenceRoutes } from "./routes.ts";
export {
  createSilenceRepository,
  type SilenceRepository,
  silenceState,
} from "./silence_repository.ts";
export { MAX_SILENCE_AHEAD_MS, parseNewSilence } from "./silence_schemas.ts";
