// Stream retirements: a decommissioned line's silence pages nobody; storage, validation and the HTTP API.

export {
  createRetirementRepository,
  type Retirement,
  type RetirementRepository,
} from "./retirement_repository.ts";
export {
  type RetirementAction,
  retirementActionSchema,
  streamIdParam,
} from "./retirement_schemas.ts";
export { streamRoutes } from "./routes.ts";
