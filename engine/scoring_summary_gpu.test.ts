import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createLogger } from "../telemetry/logger.ts";
import { ScoringSummary } from "./scoring_summary.ts";

// A host with a GPU: a fake nvidia-smi first on the path (this file runs in its own process, and
// the GPU reader is created at its first use, below), answering how many times it was asked.
const dir = mkdtempSync(join(tmpdir(), "summary-gpu-"));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, "nvidia-smi"),
  `#!/bin/sh\nn=$(cat "${dir}/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "${dir}/count"\necho "$n, 100, 81559"\n`,
);
chmodSync(join(dir, "nvidia-smi"), 0o755);
process.env.PATH = `${dir}:${process.env.PATH}`;

test("scoringSummary's timed line shows the GPU as read for it, the first line included", async () => {
  const lines: Record<string, { gpu?: { utilisation_percent: number } }>[] = [];
  const log = createLogger({ service: "engine", write: (l) => lines.push(JSON.parse(l)) });
  let seen = 0;
  const summary = new ScoringSummary(log, () => seen);
  // Just over the reader's 1 s refresh: each line may take a new reading.
  summary.start(1100);
  try {
    for (let i = 1; i <= 2; i++) {
      seen += 10;
      summary.batch([5], 1, 0);
      while (lines.length < i) await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    summary.stop();
  }
  // Each line's reading is the one taken for it: the first is nvidia-smi's first answer, and
  // the second a later one, not the reading left from the line before.
  const gpu = lines.slice(0, 2).map((l) => l.resources.gpu?.utilisation_percent);
  assert.equal(gpu[0], 1, JSON.stringify(lines[0]));
  assert.ok((gpu[1] ?? 0) > 1, JSON.stringify(lines[1]));
});
