import "reflect-metadata";
import { boot } from "../../index.ts";
import { AMDKFD_IOC_GET_VERSION } from "../../include/uapi/linux/kfd_ioctl.ts";
import { O_RDWR } from "../../include/uapi/asm-generic/fcntl.ts";

const m = await boot({ modules: ["amdgpu", "amdkfd"] });
const p = await m.spawn("smoke");
const fd = await p.open("/dev/kfd", O_RDWR);
console.log("fd", fd);
const v = { major_version: 0, minor_version: 0 };
console.log("ioctl", await p.ioctl(fd, AMDKFD_IOC_GET_VERSION, v), v);
console.log(await p.readFile("/sys/class/kfd/kfd/topology/nodes/1/gpu_id"));
console.log(await p.readFile("/sys/class/kfd/kfd/topology/nodes/1/properties"));
console.log(await p.readFile("/sys/class/kfd/kfd/topology/generation_id"));
console.log(m.dmesg().slice(-15).join("\n"));
await p.close(fd);
await p.exit();
console.log(await m.shutdown({ report_only: true }));
