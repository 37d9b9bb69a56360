// The guided tours in docs/tours/ are generated from real runs; this fails when the code has
// changed a path without the tours being regenerated (npx tsx tools/scenarios/gen-tours.ts),
// so the pictures never drift from the code.

import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generate_tours } from "../../tools/scenarios/gen-tours.ts";

describe("docs/tours", () => {
  it("match a fresh run (regenerate with npx tsx tools/scenarios/gen-tours.ts)", async () => {
    for (const [path, text] of await generate_tours()) {
      expect(existsSync(path), `${path} exists`).toBe(true);
      expect(readFileSync(path, "utf8"), `${path} is up to date`).toBe(text);
    }
  }, 120_000);
});
