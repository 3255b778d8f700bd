// The Health page: the engine's readiness, execution provider, frames/s, queue and latency, read server-side.
import type { EngineHealth } from "./engine_monitor.ts";
import { num } from "./format.ts";
import { Layout } from "./layout.tsx";

export function HealthPage(props: {
  health: EngineHealth | null;
  database: { kind: string; reachable: boolean };
}) {
  const h = props.health;
  const stats = h?.stats ?? null;
  return (
    <Layout title="Health" section="health">
      <h1>Health</h1>
      <section aria-labelledby="engine-heading">
        <h2 id="engine-heading">Engine</h2>
        {h === null ? (
          <p>No engine URL is configured for this backend.</p>
        ) : (
          <dl class="facts" id="engine-health">
            <dt>Address</dt>
            <dd>
              <code>{h.engine_url}</code>
            </dd>
            <dt>Readiness</dt>
            <dd data-ready={h.ready?.status ?? "unreachable"}>
              {h.reachable ? (h.ready?.status ?? "unknown answer") : "unreachable"}
              {h.error ? ` (${h.error})` : ""}
            </dd>
            <dt>Model</dt>
            <dd>
              {h.ready?.model
                ? `${h.ready.model.name} ${h.ready.model.version}, ${h.ready.model.n_features} sensors, window ${h.ready.model.window_size}`
                : "–"}
            </dd>
            <dt>Execution provider</dt>
            <dd>
              {h.ready?.execution_provider ?? "–"}
              {h.ready?.gpu.name ? ` (${h.ready.gpu.name})` : ""}
            </dd>
            <dt>Frames scored per second</dt>
            <dd>{h.frames_per_s === null ? "–" : num(h.frames_per_s, 3)}</dd>
            <dt>Frames accepted / rejected / scored</dt>
            <dd>
              {stats
                ? `${stats.frames.accepted} / ${stats.frames.rejected} / ${stats.frames.scored}`
                : "–"}
            </dd>
            <dt>Queue depth</dt>
            <dd>{stats ? `${stats.queue.depth} of ${stats.queue.capacity}` : "–"}</dd>
            <dt>Latency, reception to scored (p50 / p99)</dt>
            <dd>
              {stats
                ? `${num(stats.latency_ms.p50, 3)} ms / ${num(stats.latency_ms.p99, 3)} ms`
                : "–"}
            </dd>
            <dt>Inference (p50 / p99)</dt>
            <dd>
              {stats?.inference_ms
                ? `${num(stats.inference_ms.p50, 3)} ms / ${num(stats.inference_ms.p99, 3)} ms`
                : "–"}
            </dd>
            <dt>Alerts generated / delivered / waiting in the outbox</dt>
            <dd>
              {stats?.alerts
                ? `${stats.alerts.generated} / ${stats.alerts.delivered} / ${stats.alerts.outbox}`
                : "–"}
            </dd>
            <dt>Resident memory</dt>
            <dd>{stats?.rss_bytes ? `${Math.round(stats.rss_bytes / 1048576)} MB` : "–"}</dd>
          </dl>
        )}
      </section>
      <section aria-labelledby="backend-heading">
        <h2 id="backend-heading">Backend</h2>
        <dl class="facts">
          <dt>Database</dt>
          <dd>
            {props.database.kind}, {props.database.reachable ? "reachable" : "unreachable"}
          </dd>
        </dl>
      </section>
    </Layout>
  );
}
