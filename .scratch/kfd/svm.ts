import "reflect-metadata";
import { boot } from "../../index.ts";
import * as K from "../../include/uapi/linux/kfd_ioctl.ts";
import { O_RDWR } from "../../include/uapi/asm-generic/fcntl.ts";
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "../../include/uapi/asm-generic/mman.ts";

const m = await boot({ modules: ["amdgpu", { name: "amdkfd" } as never].slice(0, 1).concat(["amdkfd"]) as string[] });
const p = await m.spawn("svm");
const fd = await p.open("/dev/kfd", O_RDWR);
const gpu_id = Number((await p.readFile("/sys/class/kfd/kfd/topology/nodes/1/gpu_id")).trim());
const rfd = await p.open("/dev/dri/renderD128", O_RDWR);
console.log("rfd", rfd, "acquire", await p.ioctl(fd, K.AMDKFD_IOC_ACQUIRE_VM, { drm_fd: rfd, gpu_id }));
const x = { xnack_enabled: -1 };
console.log("xnack query", await p.ioctl(fd, K.AMDKFD_IOC_SET_XNACK_MODE, x), x);
console.log("xnack off", await p.ioctl(fd, K.AMDKFD_IOC_SET_XNACK_MODE, { xnack_enabled: 0 }));
const addr = await p.mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
const set = { start_addr: addr, size: 16 * 4096, op: K.KFD_IOCTL_SVM_OP_SET_ATTR, nattr: 3, attrs: [
  { type: K.KFD_IOCTL_SVM_ATTR_ACCESS, value: gpu_id }, { type: K.KFD_IOCTL_SVM_ATTR_SET_FLAGS, value: K.KFD_IOCTL_SVM_FLAG_GPU_RO },
  { type: K.KFD_IOCTL_SVM_ATTR_GRANULARITY, value: 3 } ] };
console.log("set", await p.ioctl(fd, K.AMDKFD_IOC_SVM, set));
const get = { start_addr: addr, size: 16 * 4096, op: K.KFD_IOCTL_SVM_OP_GET_ATTR, nattr: 5, attrs: [
  { type: K.KFD_IOCTL_SVM_ATTR_ACCESS, value: gpu_id }, { type: K.KFD_IOCTL_SVM_ATTR_SET_FLAGS, value: 0 },
  { type: K.KFD_IOCTL_SVM_ATTR_CLR_FLAGS, value: 0 }, { type: K.KFD_IOCTL_SVM_ATTR_GRANULARITY, value: 0 },
  { type: K.KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, value: 0 } ] };
console.log("get", await p.ioctl(fd, K.AMDKFD_IOC_SVM, get), JSON.stringify(get.attrs));
console.log("bad op", await p.ioctl(fd, K.AMDKFD_IOC_SVM, { ...set, op: 7 }));
console.log("munmap", await p.munmap(addr + 4 * 4096, 4096));
await m.settle();
const get2 = { start_addr: addr, size: 4 * 4096, op: K.KFD_IOCTL_SVM_OP_GET_ATTR, nattr: 1, attrs: [{ type: K.KFD_IOCTL_SVM_ATTR_ACCESS, value: gpu_id }] };
console.log("get2", await p.ioctl(fd, K.AMDKFD_IOC_SVM, get2), JSON.stringify(get2.attrs));
console.log(await p.readFile(`/sys/class/kfd/kfd/proc/${p.pid}/counters_${gpu_id}/faults`));
await p.exit();
await m.settle();
console.log(m.dmesg().filter(l => /kfd|WARN|BUG|svm/i.test(l)).slice(-20).join("\n"));
console.log(await m.shutdown({ report_only: true }));
