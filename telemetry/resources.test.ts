import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { metrics } from "@opentelemetry/sdk-node";
import { _isOnPath, hasGpu, registerResourceMetrics, sampleResources } from "./resources.ts";

test("sampleResources reports memory and a CPU share that follows work done", () => {
  const start = process.cpuUsage();
  // Burn a measurable amount of CPU so the process average cannot be zero.
  while (process.cpuUsage(start).user < 100_000) Math.sqrt(Math.random());
  const sample = sampleResources();
  assert.ok(sample.cpu_percent > 0, `cpu_percent ${sample.cpu_percent}`);
  assert.ok(Number.isFinite(sample.cpu_percent));
  assert.ok(sample.rss_bytes > 1024 * 1024);
  assert.ok(sample.heap_used_bytes > 0 && sample.heap_used_bytes < sample.rss_bytes);
  if (!hasGpu()) assert.equal(sample.gpu, undefined, "no GPU reading without nvidia-smi");
});

test("_isOnPath finds an executable only in the listed folders", (t) => {
  const withTool = mkdtempSync(join(tmpdir(), "gpu-"));
  const without = mkdtempSync(join(tmpdir(), "nogpu-"));
  t.after(() => {
    rmSync(withTool, { recursive: true, force: true });
    rmSync(without, { recursive: true, force: true });
  });
  const tool = join(withTool, process.platform === "win32" ? "nvidia-smi.exe" : "nvidia-smi");
  writeFileSync(tool, "#!/bin/sh\n");
  chmodSync(tool, 0o755);
  assert.equal(_isOnPath("nvidia-smi", [without, withTool].join(delimiter)), true);
  assert.equal(_isOnPath("nvidia-smi", without), false);
  assert.equal(_isOnPath("nvidia-smi", ""), false);
});

test("registerResourceMetrics exports process CPU and memory gauges", async () => {
  const exporter = new metrics.InMemoryMetricExporter(metrics.AggregationTemporality.CUMULATIVE);
  const reader = new metrics.PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 60_000,
  });
  const provider = new metrics.MeterProvider({ readers: [reader] });
  registerResourceMetrics(provider.getMeter("resources"));
  const { resourceMetrics } = await reader.collect();
  const byName = new Map(
    resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]),
  );
  const cpu = byName.get("process.cpu.utilization")?.dataPoints[0]?.value as number;
  assert.ok(cpu >= 0 && cpu <= 1, `cpu ratio ${cpu}`);
  const rss = byName.get("process.memory.usage")?.dataPoints[0]?.value as number;
  assert.ok(rss > 1024 * 1024, `rss ${rss}`);
  // Without a GPU the GPU gauges exist but observe nothing.
  if (!hasGpu()) assert.equal(byName.get("gpu.memory.used")?.dataPoints.length ?? 0, 0);
  await provider.shutdown();
});

test("readGpu reads the GPU through nvidia-smi on PATH alone, lspci or not", async (t) => {
  // A child process: the GPU reader of resources.ts is made once, from the PATH it starts with.
  const dir = mkdtempSync(join(tmpdir(), "fake-gpu-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "nvidia-smi"), '#!/bin/sh\necho "42, 2048, 16384"\n');
  chmodSync(join(dir, "nvidia-smi"), 0o755);
  const resources = new URL("./resources.ts", import.meta.url).href;
  const script = `const r = await import(${JSON.stringify(resources)});
    console.log(JSON.stringify({ present: r.hasGpu(), gpu: await r.readGpu() }));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script],
    { env: { ...process.env, PATH: [dir, process.env.PATH].join(delimiter) } },
  );
  assert.deepEqual(JSON.parse(stdout), {
    present: true,
    gpu: {
      utilisation_percent: 42,
      memory_used_bytes: 2048 * 1024 * 1024,
      memory_total_bytes: 16384 * 1024 * 1024,
    },
  });
});
