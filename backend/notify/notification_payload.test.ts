// Message bodies: Slack's section stays within its limit however long the plant's names are.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SLACK_SECTION_CHARS, slackBody } from "./notification_payload.ts";

test("a Slack body stays within a section's limit with the longest names, escapes whole, link kept", () => {
  const id = "7c1f3d8e-5a2b-5c4d-8e9f-0a1b2c3d4e5f";
  // 256-character names of the characters Slack needs escaped: five times longer once escaped.
  const long = (c: string) => c.repeat(256);
  const body = JSON.parse(
    slackBody(
      { event: "opened", event_key: "k", at: "2026-12-01T00:00:00Z", severity: 9, route: "chat" },
      {
        incident_id: id,
        stream_id: "line-1",
        kind: "process",
        started_at: "2026-12-01T00:00:00Z",
        resolved_at: null,
        max_severity: 9,
        max_score: 1,
        num_sensors: 7,
        sensors: ["&", "<", ">", "&", "<"].map((c, i) => ({
          feature_idx: i,
          feature: long(c),
          severity: 9 - i,
          score: 1,
        })),
        model_name: "featurewise_ocsvm",
        model_version: "2.2.0",
      },
      "https://console.example",
    ),
  );
  const text: string = body.blocks[0].text.text;
  assert.ok(text.length <= SLACK_SECTION_CHARS, `${text.length} characters`);
  assert.equal(body.text, text);
  assert.match(text, /^\*Incident opened on line-1 \(process\), severity 9\*\n/);
  assert.ok(text.endsWith(`<https://console.example/incidents/${id}|Open in the console>`));
  // Cut between escapes, never inside one; no raw markup.
  assert.doesNotMatch(text.replace(/&(amp|lt|gt);/g, ""), /&|<(?!https:\/\/console)/);
  assert.match(text, /…\n/);
});
