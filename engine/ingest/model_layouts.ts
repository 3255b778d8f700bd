// The feature layouts of the models one intake serves, and which of them a stream's frames use.
import { type ModelRoute, StreamRoutes } from "../../contracts/model_routes.ts";
import { createFeatureLayout, type FeatureLayout } from "./feature_layout.ts";

/** What a decode worker needs to rebuild the layouts: plain data, sent once at its start. */
export interface ModelLayoutsSpec {
  /** The models in lane order; the first is the fallback (`DEFAULT_MODEL_NAME`). */
  models: { name: string; names: readonly string[] }[];
  routes: readonly ModelRoute[];
}

/**
 * The layouts of an intake's models, in lane order, and the routing of streams to them. With one
 * model (no `MODEL_ROUTES`), every frame is that model's and nothing is looked up per frame.
 */
export class ModelLayouts {
  readonly spec: ModelLayoutsSpec;
  readonly layouts: readonly FeatureLayout[];
  /** The largest feature count: a decode worker's output slab holds any model's frame. */
  readonly maxSize: number;
  readonly #routes: StreamRoutes;
  readonly #lane: Map<string, number>;

  constructor(spec: ModelLayoutsSpec, layouts?: readonly FeatureLayout[]) {
    if (spec.models.length === 0) throw new RangeError("'models' must name at least one model");
    this.spec = spec;
    this.layouts = layouts ?? spec.models.map((m) => createFeatureLayout(m.names));
    this.maxSize = Math.max(...this.layouts.map((l) => l.size));
    this.#routes = new StreamRoutes(spec.routes, spec.models[0].name);
    this.#lane = new Map(spec.models.map((m, i) => [m.name, i]));
    for (const route of spec.routes) {
      if (!this.#lane.has(route.model)) {
        throw new RangeError(
          `'MODEL_ROUTES' names model ${JSON.stringify(route.model)}, which is not loaded`,
        );
      }
    }
  }

  /** One model and no routes: the layout of a single-model intake. */
  static of(layout: FeatureLayout, name = ""): ModelLayouts {
    return new ModelLayouts({ models: [{ name, names: layout.names }], routes: [] }, [layout]);
  }

  get size(): number {
    return this.layouts.length;
  }

  /** The model name of lane `lane`. */
  name(lane: number): string {
    return this.spec.models[lane].name;
  }

  /** The lane of the model that scores `streamId`. */
  route(streamId: string): number {
    return this.layouts.length === 1 ? 0 : (this.#lane.get(this.#routes.route(streamId)) ?? 0);
  }
}
