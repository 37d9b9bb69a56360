// kemu user space: a process as a script sees it (ARCHITECTURE.md §10) — libc-like wrappers that
// marshal arguments into the process's own memory and enter the kernel through the x86-64
// system-call table. Every call runs as one of the process's tasks: the main thread when it is
// idle, otherwise another thread of the same process (created on demand, as a program with a
// thread pool would have). CPU loads and stores go through the emulated MMU and take faults.

import type { Machine } from "../../kernel/machine.ts";
import { PF_EXITING, TASK_DEAD, type task_struct } from "../../kernel/sched/core.ts";
import { SYSCALLS } from "../../kernel/tokens.ts";
import type { Syscalls } from "../../arch/x86/entry/syscall_64.ts";
import { CLONE_THREAD_FLAGS } from "../../arch/x86/entry/syscall_64.ts";
import * as NR from "../../arch/x86/include/uapi/asm/unistd_64.ts";
import { errname } from "../../include/uapi/asm-generic/errno.ts";
import { AT_FDCWD, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY } from "../../include/uapi/asm-generic/fcntl.ts";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../include/uapi/asm-generic/mman.ts";
import { _IOC, _IOC_DIR, _IOC_NR, _IOC_READ, _IOC_SIZE, _IOC_TYPE } from "../../include/uapi/asm-generic/ioctl.ts";
import { ioctl_layout, ioctl_takes_total_size, layout_decode_into, layout_encode } from "../../include/uapi/struct_layout.ts";
import { copy_process } from "../../kernel/fork.ts";
import { cpu_user_read, cpu_user_write } from "../../arch/x86/mm/fault.ts";
import { exit_to_user_mode } from "../../kernel/entry/common.ts";

/** A failed call of readFile(): the errno and where it happened, like Node's fs errors. */
export class SyscallError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly path?: string,
  ) {
    super(`${syscall}${path ? ` ${path}` : ""}: ${errname(errno)} (${errno})`);
    this.name = "SyscallError";
    this.code = errname(errno);
  }
  readonly code: string;
}

/** One thread of the process and its private scratch buffer (its "stack" for marshalling). */
interface Thread {
  task: task_struct;
  /** Taken by a call from the moment it is picked until its body ends. */
  reserved: boolean;
  scratch: number;
  scratch_size: number;
}

const SCRATCH_MIN = 64 * 1024;
/**
 * Where scratch buffers are mapped: a hint far below mmap_base (2^45, 1 GiB apart per thread),
 * so the program's own mappings never sit next to them.
 */
const SCRATCH_BASE = 2 ** 45;
const SCRATCH_STRIDE = 2 ** 30;
const READ_CHUNK = 64 * 1024;
const encoder = new TextEncoder();

export class Process {
  readonly pid: number;
  private readonly threads: Thread[];
  private readonly inflight = new Set<Promise<unknown>>();
  private exited = false;

  /** Wraps a user task already set up by the kernel (spawn or fork). */
  constructor(
    readonly machine: Machine,
    leader: task_struct,
    scratch = 0,
    scratch_size = 0,
  ) {
    this.pid = leader.tgid;
    this.threads = [{ task: leader, reserved: false, scratch, scratch_size }];
  }

  private get sys(): Syscalls {
    return this.machine.symbol(SYSCALLS);
  }

  /**
   * Reserves the main thread if it is idle, else an idle thread, else a new one cloned from
   * the main thread (CLONE_VM | CLONE_FILES | CLONE_THREAD ...), as a thread pool would.
   */
  private async pick_thread(): Promise<Thread> {
    const idle = this.threads.find((t) => !t.reserved);
    if (idle) {
      idle.reserved = true;
      return idle;
    }
    const task = await copy_process(this.machine.k, this.threads[0]!.task, CLONE_THREAD_FLAGS);
    if (typeof task === "number") throw new SyscallError("clone", task);
    const th: Thread = { task, reserved: true, scratch: 0, scratch_size: 0 };
    this.threads.push(th);
    return th;
  }

  /** Runs `fn` in one of the process's tasks; the machine schedules it like any context. */
  private async enter<T>(fn: (th: Thread) => Promise<T>): Promise<T> {
    if (this.exited) throw new Error(`process ${this.pid} has exited`);
    const th = await this.pick_thread();
    const p = this.machine.k.sched.run_task(th.task, () => fn(th));
    this.inflight.add(p);
    try {
      return await p;
    } finally {
      this.inflight.delete(p);
      th.reserved = false;
    }
  }

  /** syscall(2) from inside a task body. */
  private raw(nr: number, ...args: number[]): Promise<number> {
    return this.sys.do_syscall_64(nr, args);
  }

  /** A user buffer of at least `size` bytes for this thread, mapped on first need. */
  private async scratch(th: Thread, size: number): Promise<number> {
    if (th.scratch_size >= size) return th.scratch;
    if (th.scratch) await this.raw(NR.__NR_munmap, th.scratch, th.scratch_size);
    const len = Math.ceil(Math.max(size, SCRATCH_MIN) / 4096) * 4096;
    const hint = SCRATCH_BASE + this.threads.indexOf(th) * SCRATCH_STRIDE;
    const addr = await this.raw(NR.__NR_mmap, hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr < 0) throw new SyscallError("mmap", addr);
    th.scratch = addr;
    th.scratch_size = len;
    return addr;
  }

  /** Puts `bytes` in the thread's scratch buffer with CPU stores; returns its address. */
  private async put(th: Thread, bytes: Uint8Array): Promise<number> {
    const addr = await this.scratch(th, bytes.length);
    await cpu_user_write(this.machine.k, addr, bytes);
    return addr;
  }

  private async put_string(th: Thread, s: string): Promise<number> {
    const b = encoder.encode(s);
    const z = new Uint8Array(b.length + 1);
    z.set(b);
    return this.put(th, z);
  }

  // ---- memory -----------------------------------------------------------------------------

  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_mmap, addr, length, prot, flags, fd, offset));
  }

  munmap(addr: number, length: number): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_munmap, addr, length));
  }

  mprotect(addr: number, length: number, prot: number): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_mprotect, addr, length, prot));
  }

  madvise(addr: number, length: number, advice: number): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_madvise, addr, length, advice));
  }

  /** CPU loads of `length` bytes at `addr`; an unhandled fault rejects with SIGSEGV/SIGBUS. */
  read(addr: number, length: number): Promise<Uint8Array> {
    return this.enter(async () => {
      const data = await cpu_user_read(this.machine.k, addr, length);
      await exit_to_user_mode(this.machine.k);
      return data;
    });
  }

  /** CPU stores of `bytes` at `addr`. */
  write(addr: number, bytes: Uint8Array | ArrayLike<number>): Promise<void> {
    const data = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
    return this.enter(async () => {
      await cpu_user_write(this.machine.k, addr, data);
      await exit_to_user_mode(this.machine.k);
    });
  }

  // ---- processes ----------------------------------------------------------------------------

  /** fork(2): the child is a new Process whose memory is a copy-on-write copy of this one's. */
  fork(): Promise<Process> {
    return this.enter(async (th) => {
      const pid = await this.raw(NR.__NR_fork);
      if (pid < 0) throw new SyscallError("fork", pid);
      const child = this.machine.k.sched.find_task_by_pid(pid)!;
      // The child's copy of this thread's scratch mapping serves the child's main thread.
      return new Process(this.machine, child, th.scratch, th.scratch_size);
    });
  }

  /**
   * exit(2) for the whole process: exit_group on one thread, then every other thread notices
   * the group exit on its way back to user mode. Calls still running finish first.
   */
  async exit(code = 0): Promise<void> {
    if (this.exited) return;
    // A fatal signal (the OOM killer's SIGKILL) may already have ended the main thread on its
    // way back to user mode: there is no thread left to call exit_group, only the rest to reap.
    const main = this.threads[0]!.task;
    if (!(main.flags & PF_EXITING)) await this.enter(() => this.raw(NR.__NR_exit_group, code));
    this.exited = true;
    await Promise.allSettled([...this.inflight]);
    const k = this.machine.k;
    for (const th of this.threads) {
      if (th.task.__state === TASK_DEAD || k.sched.find_task_by_pid(th.task.pid) === undefined) continue;
      await k.sched.run_task(th.task, () => exit_to_user_mode(k));
    }
  }

  // ---- files --------------------------------------------------------------------------------

  /** open(2): a descriptor or -errno. */
  open(path: string, flags = O_RDONLY, mode = 0o644): Promise<number> {
    return this.enter(async (th) => this.raw(NR.__NR_openat, AT_FDCWD, await this.put_string(th, path), flags, mode));
  }

  close(fd: number): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_close, fd));
  }

  /**
   * ioctl(2). A plain-object `arg` is laid out as the request's UAPI struct in this thread's
   * scratch memory; the kernel gets its address, and for _IOR/_IOWR requests the struct is
   * read back into the same object. A number is passed as is. For a request registered with
   * register_ioctl_total_size (AMDKFD_IOC_SVM), the struct's whole size, flexible array
   * included, goes in the request's size field, as its C callers (libhsakmt) build the number.
   */
  ioctl(fd: number, request: number, arg: object | number = 0): Promise<number> {
    if (typeof arg === "number") return this.enter(() => this.raw(NR.__NR_ioctl, fd, request, arg));
    const layout = ioctl_layout(request);
    if (!layout) throw new TypeError(`ioctl 0x${request.toString(16)}: no struct layout is registered for this request`);
    return this.enter(async (th) => {
      const bytes = layout_encode(layout, arg);
      const addr = await this.put(th, bytes);
      const sized = ioctl_takes_total_size(request) && bytes.length > _IOC_SIZE(request) ? _IOC(_IOC_DIR(request), _IOC_TYPE(request), _IOC_NR(request), bytes.length) : request;
      const ret = await this.raw(NR.__NR_ioctl, fd, sized, addr);
      if (_IOC_DIR(request) & _IOC_READ) {
        layout_decode_into(layout, await cpu_user_read(this.machine.k, addr, bytes.length), arg);
      }
      return ret;
    });
  }

  /** pread(2) into a fresh buffer: the bytes read, or -errno. */
  pread(fd: number, length: number, offset: number): Promise<Uint8Array | number> {
    return this.enter(async (th) => {
      const buf = await this.scratch(th, length);
      const n = await this.raw(NR.__NR_pread64, fd, buf, length, offset);
      return n < 0 ? n : cpu_user_read(this.machine.k, buf, n);
    });
  }

  /** write(2) of `bytes` at the file position: bytes written or -errno. */
  writeFd(fd: number, bytes: Uint8Array): Promise<number> {
    return this.enter(async (th) => this.raw(NR.__NR_write, fd, await this.put(th, bytes), bytes.length));
  }

  /** read(2) of up to `length` bytes at the file position: the bytes, or -errno. */
  readFd(fd: number, length: number): Promise<Uint8Array | number> {
    return this.enter(async (th) => {
      const buf = await this.scratch(th, length);
      const n = await this.raw(NR.__NR_read, fd, buf, length);
      return n < 0 ? n : cpu_user_read(this.machine.k, buf, n);
    });
  }

  lseek(fd: number, offset: number, whence: number): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_lseek, fd, offset, whence));
  }

  ftruncate(fd: number, length: number): Promise<number> {
    return this.enter(() => this.raw(NR.__NR_ftruncate, fd, length));
  }

  unlink(path: string): Promise<number> {
    return this.enter(async (th) => this.raw(NR.__NR_unlink, await this.put_string(th, path)));
  }

  /** The whole text of a file (`cat`): procfs, sysfs, debugfs, tmpfs. Rejects with SyscallError. */
  readFile(path: string): Promise<string> {
    return this.enter(async (th) => {
      const fd = await this.raw(NR.__NR_openat, AT_FDCWD, await this.put_string(th, path), O_RDONLY, 0);
      if (fd < 0) throw new SyscallError("open", fd, path);
      const parts: Uint8Array[] = [];
      try {
        const buf = await this.scratch(th, READ_CHUNK);
        for (;;) {
          const n = await this.raw(NR.__NR_read, fd, buf, READ_CHUNK);
          if (n < 0) throw new SyscallError("read", n, path);
          if (n === 0) break;
          parts.push(await cpu_user_read(this.machine.k, buf, n));
        }
      } finally {
        await this.raw(NR.__NR_close, fd);
      }
      return new TextDecoder().decode(Buffer.concat(parts));
    });
  }

  /** `echo text > path`: bytes written, or -errno from open or write. */
  writeFile(path: string, text: string): Promise<number> {
    return this.enter(async (th) => {
      const fd = await this.raw(NR.__NR_openat, AT_FDCWD, await this.put_string(th, path), O_WRONLY | O_CREAT | O_TRUNC, 0o644);
      if (fd < 0) return fd;
      try {
        const bytes = encoder.encode(text);
        return await this.raw(NR.__NR_write, fd, await this.put(th, bytes), bytes.length);
      } finally {
        await this.raw(NR.__NR_close, fd);
      }
    });
  }
}
