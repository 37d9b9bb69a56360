#!/usr/bin/env node
// The `kemu` command: registers tsx (with the project's tsconfig, for its legacy decorators) and
// runs the TypeScript CLI, so `npx kemu ...` works without a build step.
import { URL, fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
await import(new URL("../tools/kemu.ts", import.meta.url).href);
