// The public API of ARCHITECTURE.md §10 as a script uses it: boot → spawn → mmap → CPU stores
// and loads through the emulated MMU, bad-argument errnos, copy-on-write across fork, shared
// anonymous memory and tmpfs files across fork, SIGSEGV naming the address, ioctl marshalling
// through process memory, procfs text, and a clean shutdown after exit.

import { afterEach, describe, expect, it } from "vitest";
import {
  boot, EINVAL, ENOENT, ENOMEM, MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MINIMAL_MACHINE,
  O_CREAT, O_RDWR, PROT_NONE, PROT_READ, PROT_WRITE, SEEK_SET, type Machine,
} from "../../index.ts";

const PAGE = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

let machines: Machine[] = [];

async function machine(): Promise<Machine> {
  const m = await boot({ ...MINIMAL_MACHINE, name: "runtime-test" });
  machines.push(m);
  return m;
}

afterEach(async () => {
  const ms = machines;
  machines = [];
  for (const m of ms) await m.shutdown();
});

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);
}

describe("Process memory", () => {
  it("mmap, write, read back", async () => {
    const m = await machine();
    const p = await m.spawn("writer");
    expect(p.pid).toBeGreaterThan(0);
    const addr = await p.mmap(0, 4 * PAGE, RW, ANON);
    expect(addr).toBeGreaterThan(0);
    expect(addr % PAGE).toBe(0);
    const data = bytes(3 * PAGE + 100, 7);
    await p.write(addr + 50, data);
    expect(await p.read(addr + 50, data.length)).toEqual(data);
    expect(await p.read(addr, 50)).toEqual(new Uint8Array(50));
    await p.exit();
  });

  it("returns the kernel's errno for bad arguments and changes nothing", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, 2 * PAGE, RW, ANON);
    await p.write(addr, [1, 2, 3]);
    expect(await p.munmap(addr + 1, PAGE)).toBe(-EINVAL);
    expect(await p.munmap(addr, 0)).toBe(-EINVAL);
    expect(await p.munmap(2 ** 64 - PAGE, 2 * PAGE)).toBe(-EINVAL);
    expect(await p.mmap(0, 0, RW, ANON)).toBe(-EINVAL);
    expect(await p.mmap(0, PAGE, RW, MAP_ANONYMOUS)).toBe(-EINVAL);
    expect(await p.mmap(addr + 1, PAGE, RW, ANON | MAP_FIXED)).toBe(-EINVAL);
    expect(await p.mprotect(addr + 1, PAGE, PROT_READ)).toBe(-EINVAL);
    expect(await p.mprotect(addr, PAGE, 0x100)).toBe(-EINVAL);
    expect(await p.madvise(addr, PAGE, 9999)).toBe(-EINVAL);
    expect(await p.mprotect(addr + 64 * PAGE, PAGE, PROT_READ)).toBe(-ENOMEM);
    expect(await p.read(addr, 3)).toEqual(Uint8Array.from([1, 2, 3]));
    await p.exit();
  });

  it("MADV_DONTNEED drops private anonymous contents", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, PAGE, RW, ANON);
    await p.write(addr, [9, 9]);
    expect(await p.madvise(addr, PAGE, MADV_DONTNEED)).toBe(0);
    expect(await p.read(addr, 2)).toEqual(new Uint8Array(2));
    await p.exit();
  });

  it("rejects an unhandled fault with SIGSEGV naming the address, and keeps running", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, PAGE, PROT_READ, ANON);
    await expect(p.write(addr + 16, [1])).rejects.toThrow(new RegExp(`SIGSEGV.*${(addr + 16).toString(16)}`, "i"));
    await expect(p.read(0x1000, 4)).rejects.toThrow(/SIGSEGV.*0*1000/i);
    const none = await p.mmap(0, PAGE, PROT_NONE, ANON);
    await expect(p.read(none, 1)).rejects.toThrow(/SIGSEGV/);
    // The machine and the process go on.
    const ok = await p.mmap(0, PAGE, RW, ANON);
    await p.write(ok, [5]);
    expect(await p.read(ok, 1)).toEqual(Uint8Array.from([5]));
    await p.exit();
  });
});

describe("threads", () => {
  it("a call arriving while the main task is busy runs on a second thread of the process", async () => {
    const m = await machine();
    const p = await m.spawn("pool");
    const a = await p.mmap(0, 4 * PAGE, RW, ANON);
    const [, , status] = await Promise.all([
      p.write(a, bytes(4 * PAGE, 2)),
      p.write(a + 2 * PAGE, [7]),
      p.readFile("/proc/self/status"),
    ]);
    expect(status).toMatch(/\nTgid:\t(\d+)\n/);
    expect(status.match(/\nTgid:\t(\d+)\n/)![1]).toBe(String(p.pid));
    expect(Number(status.match(/\nThreads:\t(\d+)\n/)![1])).toBeGreaterThan(1);
    expect(await p.read(a + 4, 4)).toEqual(bytes(8, 2).subarray(4));
    await p.exit();
    expect(m.k.sched.all_tasks().filter((t) => t.tgid === p.pid)).toEqual([]);
  });
});

describe("fork", () => {
  it("copy-on-write: each side sees only its own writes", async () => {
    const m = await machine();
    const parent = await m.spawn("parent");
    const addr = await parent.mmap(0, 2 * PAGE, RW, ANON);
    await parent.write(addr, bytes(2 * PAGE, 1));
    const child = await parent.fork();
    expect(child.pid).not.toBe(parent.pid);
    expect(await child.read(addr, 2 * PAGE)).toEqual(bytes(2 * PAGE, 1));
    await child.write(addr, [0xaa, 0xbb]);
    await parent.write(addr + PAGE, [0xcc]);
    expect(await parent.read(addr, 2)).toEqual(bytes(2, 1));
    expect(await child.read(addr, 2)).toEqual(Uint8Array.from([0xaa, 0xbb]));
    expect(await child.read(addr + PAGE, 1)).toEqual(bytes(PAGE + 1, 1).subarray(PAGE));
    await child.exit();
    expect(await parent.read(addr, 2)).toEqual(bytes(2, 1));
    await parent.exit();
  });

  it("MAP_SHARED|MAP_ANONYMOUS memory is shared with the child", async () => {
    const m = await machine();
    const parent = await m.spawn();
    const addr = await parent.mmap(0, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS);
    await parent.write(addr, [1]);
    const child = await parent.fork();
    await child.write(addr + 1, [2]);
    expect(await parent.read(addr, 2)).toEqual(Uint8Array.from([1, 2]));
    expect(await parent.readFile(`/proc/${parent.pid}/maps`)).toMatch(/\/dev\/zero \(deleted\)/);
    await parent.exit();
    expect(await child.read(addr, 2)).toEqual(Uint8Array.from([1, 2]));
    await child.exit();
  });

  it("a shared /tmp file mapping is seen by both processes and through read()", async () => {
    const m = await machine();
    const a = await m.spawn();
    const fd = await a.open("/tmp/shared", O_CREAT | O_RDWR);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(await a.ftruncate(fd, 2 * PAGE)).toBe(0);
    const addr = await a.mmap(0, 2 * PAGE, RW, MAP_SHARED, fd, 0);
    const b = await a.fork();
    await b.write(addr + PAGE, [7, 8, 9]);
    expect(await a.read(addr + PAGE, 3)).toEqual(Uint8Array.from([7, 8, 9]));
    expect(await a.pread(fd, 3, PAGE)).toEqual(Uint8Array.from([7, 8, 9]));
    expect(await b.lseek(fd, 0, SEEK_SET)).toBe(0);
    await b.exit();
    await a.exit();
  });
});

describe("files", () => {
  it("open errnos and lowest-free descriptors", async () => {
    const m = await machine();
    const p = await m.spawn();
    expect(await p.open("/nonexistent")).toBe(-ENOENT);
    const a = await p.open("/tmp/a", O_CREAT | O_RDWR);
    const b = await p.open("/tmp/b", O_CREAT | O_RDWR);
    expect([a, b]).toEqual([0, 1]);
    expect(await p.close(a)).toBe(0);
    expect(await p.open("/tmp/b", O_RDWR)).toBe(0);
    await p.exit();
  });

  it("readFile /proc/<pid>/maps after mmap", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, 3 * PAGE, PROT_READ, ANON);
    const maps = await p.readFile(`/proc/${p.pid}/maps`);
    const hex = (x: number) => x.toString(16).padStart(8, "0");
    expect(maps).toContain(`${hex(addr)}-${hex(addr + 3 * PAGE)} r--p 00000000 00:00 0`);
    expect(await p.readFile("/proc/self/status")).toMatch(new RegExp(`^Name:\\t\\S+\\n[\\s\\S]*\\nTgid:\\t${p.pid}\\n`));
    await expect(p.readFile("/proc/nope")).rejects.toThrow(/ENOENT/);
    await p.exit();
  });

  it("pagemap shows a present entry for a touched page", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, 2 * PAGE, RW, ANON);
    await p.write(addr, [1]);
    const fd = await p.open(`/proc/${p.pid}/pagemap`);
    expect(fd).toBeGreaterThanOrEqual(0);
    const ent = await p.pread(fd, 16, (addr / PAGE) * 8);
    expect(ent).toBeInstanceOf(Uint8Array);
    const e = ent as Uint8Array;
    expect(e[7]! & 0x80).toBe(0x80);
    expect(e[15]! & 0x80).toBe(0);
    expect(await p.pread(fd, 8, 3)).toBe(-EINVAL);
    await p.exit();
  });

  it("writeFile arms another process's fail-nth and readFile reads it back", async () => {
    const m = await machine();
    const p = await m.spawn("injector");
    const q = await m.spawn("victim");
    // The injector's own calls are not counted: only the victim's task is armed.
    expect(await p.writeFile(`/proc/${q.pid}/fail-nth`, "5")).toBe(1);
    expect(await p.readFile(`/proc/${q.pid}/fail-nth`)).toBe("5\n");
    expect(await p.writeFile(`/proc/${q.pid}/fail-nth`, "-1")).toBe(-EINVAL);
    expect(await p.writeFile(`/proc/${q.pid}/make-it-fail`, "1")).toBe(1);
    expect(await p.readFile(`/proc/${q.pid}/make-it-fail`)).toBe("1\n");
    expect(await p.writeFile("/sys/kernel/debug/failslab/probability", "nope")).toBe(-EINVAL);
    await q.exit();
    await expect(p.readFile(`/proc/${q.pid}/fail-nth`)).rejects.toThrow(/ENOENT/);
    await p.exit();
  });
});

describe("exit", () => {
  it("leaves nothing behind: shutdown passes its leak check", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, 8 * PAGE, RW, ANON);
    await p.write(addr, bytes(8 * PAGE, 3));
    const fd = await p.open("/tmp/kept", O_CREAT | O_RDWR);
    expect(await p.mmap(0, PAGE, RW, MAP_SHARED, fd, 0)).toBeGreaterThan(0);
    const c = await p.fork();
    await c.exit(3);
    await p.exit();
    machines = machines.filter((x) => x !== m);
    await expect(m.shutdown()).resolves.toEqual([]);
  });

  it("a process that never exits is killed at power-off", async () => {
    const m = await machine();
    const p = await m.spawn();
    const addr = await p.mmap(0, PAGE, RW, ANON);
    await p.write(addr, [1]);
    machines = machines.filter((x) => x !== m);
    await expect(m.shutdown()).resolves.toEqual([]);
  });
});
