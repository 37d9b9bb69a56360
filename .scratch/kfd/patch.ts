import { Hqd } from "../../hw/amdgpu/cp.ts";
import { IhBlock } from "../../hw/amdgpu/ih.ts";
let n = 0, posts = 0;
const H = Hqd.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
const origStep = H.step!;
H.step = function (this: unknown, ...a: unknown[]) { const r = origStep.apply(this, a); if (++n % 100000 === 0) console.log("step", n, JSON.stringify(r), (this as Hqd).rptr, (this as Hqd).wptr, (this as Hqd).error); return r; };
const I = IhBlock.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
const origPost = I.post!;
I.post = function (this: unknown, ...a: unknown[]) { if (++posts < 20 || posts % 10000 === 0) console.log("post", posts, JSON.stringify(a[0])); return origPost.apply(this, a); };
