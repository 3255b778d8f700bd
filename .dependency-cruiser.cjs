// The layering, checked by `npm test` (layering.test.ts): layers point down, services never import each other.
// Tests and their helpers (`_test/`) may reach across layers to drive real parts (a trace test
// runs both services); cycles are refused everywhere.
const TESTS = "\\.test\\.tsx?$|(^|/)_test/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import cycle: split the shared part out into a lower layer.",
      from: {},
      to: { circular: true },
    },
    {
      name: "contracts-are-leaves",
      severity: "error",
      comment: "contracts/ (wire contracts, schemas) depends on nothing of ours.",
      from: { path: "^contracts/", pathNot: TESTS },
      to: { path: "^(engine|backend|models|scoring|telemetry)/|^[^/]+\\.ts$" },
    },
    {
      name: "scoring-imports-no-service",
      severity: "error",
      comment: "scoring/ is pure (featurisation, flagged sensors, incidents): contracts/ only.",
      from: { path: "^scoring/", pathNot: TESTS },
      to: { path: "^(engine|backend|models|telemetry)/|^[^/]+\\.ts$" },
    },
    {
      name: "telemetry-imports-no-service",
      severity: "error",
      comment: "telemetry/ is shared by both services: contracts/ at most.",
      from: { path: "^telemetry/", pathNot: TESTS },
      to: { path: "^(engine|backend|models|scoring)/" },
    },
    {
      name: "engine-never-imports-backend",
      severity: "error",
      comment: "Services never import each other: they talk over HTTP.",
      from: { path: "^engine/", pathNot: TESTS },
      to: { path: "^backend/" },
    },
    {
      name: "backend-never-imports-engine",
      severity: "error",
      comment:
        "Services never import each other; the backend shares only models/signal (the plant).",
      from: { path: "^backend/", pathNot: TESTS },
      to: { path: "^(engine|scoring)/|^models/(?!signal/)" },
    },
    {
      name: "engine-imports-no-models",
      severity: "error",
      comment:
        "The engine service loads a model's artifacts through engine/infer; it imports nothing of models/ (training, evaluation). Its benchmark tool (engine/bench) makes frames with the plant generator.",
      from: { path: "^engine/", pathNot: [TESTS, "^engine/bench/"] },
      to: { path: "^models/" },
    },
    {
      name: "bench-imports-only-the-plant-and-eval",
      severity: "error",
      comment: "npm run bench drives the engine with frames of the plant generator.",
      from: { path: "^engine/bench/", pathNot: TESTS },
      to: { path: "^models/", pathNot: "^models/(signal|eval)/" },
    },
    {
      name: "models-import-no-service",
      severity: "error",
      comment:
        "models/ (training, evaluation) imports no service: from the engine at most the model loader's and the history reader's public faces.",
      from: { path: "^models/", pathNot: TESTS },
      to: { path: "^backend/|^engine/(?!(infer|history)/mod\\.ts$)" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|\\.data|\\.git)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".tsx", ".js", ".mjs"] },
    skipAnalysisNotInRules: true,
  },
};
