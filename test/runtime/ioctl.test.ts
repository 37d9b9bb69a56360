// ioctl marshalling through process memory (ARCHITECTURE.md §10): a plain object with the C
// header's field names is laid out in the caller's memory, a test-only misc device reads it with
// copy_from_user (flexible array included, as AMDKFD_IOC_SVM's attrs[]), writes results back
// with copy_to_user, and the runtime copies the output fields into the same object.

import { afterEach, describe, expect, it } from "vitest";
import {
  boot, EBADF, EFAULT, ENOTTY, MINIMAL_MACHINE, O_RDWR, _IO, _IOC_SIZE, _IOR, _IOW, _IOWR, array, flex_array, layout_decode,
  layout_encode, struct, struct_size, u32, u64, u8, type Machine,
} from "../../index.ts";
import { MISC } from "../../kernel/tokens.ts";
import { MISC_DYNAMIC_MINOR, type miscdevice } from "../../drivers/char/misc.ts";
import { copy_from_user, copy_to_user } from "../../include/linux/uaccess.ts";
import type { file } from "../../include/linux/fs.ts";

const kemu_test_attr = struct("kemu_test_attr", { type: u32, value: u32 });
const kemu_test_args = struct("kemu_test_args", {
  in_val: u64,
  n: u32,
  nattr: u32,
  out_sum: u64,
  tag: array(u8, 4),
  attrs: flex_array(kemu_test_attr, "nattr"),
});
const KEMU_TEST_ROUNDTRIP = _IOWR("k", 1, kemu_test_args);
const KEMU_TEST_SET = _IOW("k", 2, struct("kemu_test_set", { v: u64 }));
const KEMU_TEST_GET = _IOR("k", 3, struct("kemu_test_get", { v: u64 }));
const KEMU_TEST_NOPE = _IO("k", 9);

/** The driver half: what a kernel ioctl handler does with copy_from_user/copy_to_user. */
function test_fops(state: { v: number }) {
  return {
    unlocked_ioctl: async (f: file, cmd: number, arg: number): Promise<number> => {
      const k = f.f_inode.i_sb.s_vfs.k;
      if (cmd === KEMU_TEST_ROUNDTRIP) {
        const head = new Uint8Array(_IOC_SIZE(cmd));
        if (await copy_from_user(k, head, arg, head.length)) return -EFAULT;
        const nattr = layout_decode(kemu_test_args, head).nattr;
        const all = new Uint8Array(struct_size(kemu_test_args, nattr));
        if (await copy_from_user(k, all, arg, all.length)) return -EFAULT;
        const a = layout_decode(kemu_test_args, all);
        a.out_sum = a.in_val + a.attrs.reduce((s, x) => s + x.value, 0);
        for (const x of a.attrs) x.value *= 2;
        a.tag.reverse();
        const out = layout_encode(kemu_test_args, a);
        return (await copy_to_user(k, arg, out, out.length)) ? -EFAULT : a.n;
      }
      if (cmd === KEMU_TEST_SET || cmd === KEMU_TEST_GET) {
        const b = new Uint8Array(8);
        if (cmd === KEMU_TEST_SET) {
          if (await copy_from_user(k, b, arg, 8)) return -EFAULT;
          state.v = new DataView(b.buffer).getUint32(0, true);
          return 0;
        }
        new DataView(b.buffer).setUint32(0, state.v, true);
        return (await copy_to_user(k, arg, b, 8)) ? -EFAULT : 0;
      }
      return -ENOTTY;
    },
  };
}

const machines: Machine[] = [];
afterEach(async () => {
  for (const m of machines.splice(0)) await m.shutdown();
});

async function with_device(): Promise<{ m: Machine; state: { v: number } }> {
  const m = await boot({ ...MINIMAL_MACHINE, name: "ioctl-test" });
  machines.push(m);
  const state = { v: 0 };
  const md: miscdevice = { minor: MISC_DYNAMIC_MINOR, name: "kemu_ioctl_test", fops: test_fops(state) };
  expect(await m.run_kthread("register", () => m.symbol(MISC).misc_register(md))).toBe(0);
  return { m, state };
}

describe("ioctl marshalling", () => {
  it("round-trips a struct with a flexible array through process memory", async () => {
    const { m } = await with_device();
    const p = await m.spawn();
    const fd = await p.open("/dev/kemu_ioctl_test", O_RDWR);
    expect(fd).toBeGreaterThanOrEqual(0);
    const args = {
      in_val: 2 ** 40 + 5,
      n: 77,
      nattr: 3,
      out_sum: 0,
      tag: [1, 2, 3, 4],
      attrs: [{ type: 1, value: 10 }, { type: 2, value: 20 }, { type: 3, value: 30 }],
    };
    const attrs = args.attrs;
    expect(await p.ioctl(fd, KEMU_TEST_ROUNDTRIP, args)).toBe(77);
    expect(args.out_sum).toBe(2 ** 40 + 65);
    expect(args.tag).toEqual([4, 3, 2, 1]);
    expect(args.attrs).toBe(attrs);
    expect(args.attrs.map((a) => a.value)).toEqual([20, 40, 60]);
    await p.exit();
  });

  it("_IOW does not write back, _IOR does", async () => {
    const { m, state } = await with_device();
    const p = await m.spawn();
    const fd = await p.open("/dev/kemu_ioctl_test", O_RDWR);
    const set = { v: 1234 };
    expect(await p.ioctl(fd, KEMU_TEST_SET, set)).toBe(0);
    expect(state.v).toBe(1234);
    const get = { v: 0 };
    expect(await p.ioctl(fd, KEMU_TEST_GET, get)).toBe(0);
    expect(get.v).toBe(1234);
    await p.exit();
  });

  it("bad descriptors, unknown requests and bad pointers", async () => {
    const { m } = await with_device();
    const p = await m.spawn();
    const fd = await p.open("/dev/kemu_ioctl_test", O_RDWR);
    expect(await p.ioctl(fd + 10, KEMU_TEST_GET, { v: 0 })).toBe(-EBADF);
    expect(await p.ioctl(fd, KEMU_TEST_NOPE, 0)).toBe(-ENOTTY);
    expect(await p.ioctl(fd, KEMU_TEST_GET, 0x10)).toBe(-EFAULT);
    const tmp = await p.open("/tmp", 0);
    expect(await p.ioctl(tmp, KEMU_TEST_GET, { v: 0 })).toBe(-ENOTTY);
    expect(() => p.ioctl(fd, _IOWR("k", 50, 8), { v: 0 })).toThrow(/no struct layout/);
    await p.exit();
  });
});
