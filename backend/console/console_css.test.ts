// The console's colours, read from its style sheet: text and focus rings against what they sit on (WCAG 1.4.3, 1.4.11).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

const CSS = await readFile(new URL("./assets/console.css", import.meta.url), "utf8");

/** The declarations of the rule whose selector is exactly `selector`. */
function rule(selector: string): Record<string, string> {
  const at = CSS.indexOf(`\n${selector} {`);
  assert.ok(at >= 0, `a rule for ${selector}`);
  const body = CSS.slice(CSS.indexOf("{", at) + 1, CSS.indexOf("}", at));
  return Object.fromEntries(
    body
      .split(";")
      .map((d) => d.split(":").map((s) => s.trim()))
      .filter((d) => d.length === 2 && d[0] !== ""),
  );
}

/** A colour of the sheet (#rgb, #rrggbb, or a :root custom property holding one) as 0..255 channels. */
function rgb(value: string): number[] {
  const name = value.match(/^var\((--[\w-]+)\)$/)?.[1];
  const hex = name ? rule(":root")[name] : value;
  assert.match(hex, /^#([\da-f]{3}){1,2}$/i, `a #rgb or #rrggbb colour: ${value}`);
  const full = hex.length === 4 ? hex.replace(/[\da-f]/gi, "$&$&") : hex;
  return [1, 3, 5].map((i) => Number.parseInt(full.slice(i, i + 2), 16));
}

/** WCAG 2 contrast ratio of two colours. */
function contrast(a: string, b: string): number {
  const luminance = (c: number[]) => {
    const [r, g, bl] = c.map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [luminance(rgb(a)), luminance(rgb(b))].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

test("every heatmap step's number is readable on its colour (4.5:1 for its 12 px text)", () => {
  for (let step = 1; step <= 8; step++) {
    const cell = rule(`.sev-${step}`);
    // A step without its own colour shows the page's text colour.
    const text = cell.color ?? "var(--fg)";
    const ratio = contrast(text, cell.background);
    assert.ok(ratio >= 4.5, `.sev-${step}: ${text} on ${cell.background} is ${ratio.toFixed(2)}:1`);
  }
});

test("the header's focus ring stands out from the dark header (3:1)", () => {
  const ring = rule(".top :focus-visible")["outline-color"];
  const ratio = contrast(ring, rule(".top").background);
  assert.ok(ratio >= 3, `${ring} on the header is ${ratio.toFixed(2)}:1`);
});
