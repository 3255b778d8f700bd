// The wire contracts both services share: valibot schemas, their types, and the error type.
export * from "./alert.ts";
export * from "./config.ts";
export * from "./error.ts";
export * from "./frame.ts";
export * from "./health.ts";
export * from "./model.ts";
export * from "./models_api.ts";
