// KUnit suite for the interrupt handler ring: the 8-dword IV as the hardware writes it and
// amdgpu_ih decodes it (client, source, ring, VMID and its hub, PASID from the VMID LUT, node,
// 48-bit timestamp, src_data), the ring wrapping many times with every vector delivered once and
// in order, and an overflow: the hardware overwrites the oldest vectors, the driver warns,
// resynchronises past the overwritten part, clears the flag and carries on.
//
// The vectors come from a test source registered on an otherwise unused (client, source) pair
// and are posted straight into the IH model, as an engine would.

import {
  KUNIT_ASSERT_EQ, KUNIT_CASE, KUNIT_EXPECT_EQ, KUNIT_EXPECT_FALSE, KUNIT_EXPECT_GE, KUNIT_EXPECT_LE, KUNIT_EXPECT_TRUE,
  kunit_add_action, type kunit, type kunit_suite,
} from "../../../../lib/kunit/test.ts";
import type { amdgpu_device } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu.ts";
import { amdgpu_irq_add_id, amdgpu_irq_src } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_irq.ts";
import type { amdgpu_iv_entry } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_ih.ts";
import { RREG32, WREG32 } from "../../../../drivers/gpu/drm/amd/amdgpu/amdgpu_device.ts";
import { SOC15_IH_CLIENTID_GRBM_CP } from "../../../../drivers/gpu/drm/amd/include/soc15_ih_clientid.ts";
import { mmIH_VMID_0_LUT } from "../../../../drivers/gpu/drm/amd/include/asic_reg/kemu_gpu_regs.ts";
import { IH_TIMESTAMP_NS } from "../../../../hw/amdgpu/ih.ts";
import { get_adev, get_gpu_hw, gpu_machine, MiB } from "./amdgpu_harness.ts";

const TEST_CLIENT = SOC15_IH_CLIENTID_GRBM_CP;
const TEST_SRC = 0xfe;

interface seen_iv {
  client_id: number;
  src_id: number;
  ring_id: number;
  vmid: number;
  vmid_src: number;
  pasid: number;
  node_id: number;
  timestamp: number;
  src_data: number[];
}

/** Registers a source that records every vector it gets (in hard-IRQ context, so it never sleeps). */
function test_source(test: kunit, adev: amdgpu_device): seen_iv[] {
  const seen: seen_iv[] = [];
  const src = new amdgpu_irq_src({
    process: (_adev, _src, e: amdgpu_iv_entry) => {
      seen.push({
        client_id: e.client_id, src_id: e.src_id, ring_id: e.ring_id, vmid: e.vmid, vmid_src: e.vmid_src, pasid: e.pasid,
        node_id: e.node_id, timestamp: e.timestamp, src_data: [...e.src_data],
      });
      return 1;
    },
  });
  KUNIT_ASSERT_EQ(test, amdgpu_irq_add_id(adev, TEST_CLIENT, TEST_SRC, src), 0);
  kunit_add_action(test, () => {
    adev.irq.client[TEST_CLIENT]!.sources![TEST_SRC] = null;
  });
  return seen;
}

function post_seq(test: kunit, from: number, n: number): void {
  const ih = get_gpu_hw(test).ih;
  for (let i = from; i < from + n; i++) ih.post({ client_id: TEST_CLIENT, src_id: TEST_SRC, src_data: [i, ~i >>> 0, 0, 0] });
}

/** True when `seen` holds exactly the sequence numbers from..to-1, in order, each intact. */
function in_order(seen: seen_iv[], from: number, to: number): boolean {
  if (seen.length !== to - from) return false;
  return seen.every((s, j) => s.src_data[0] === from + j && s.src_data[1] === ~(from + j) >>> 0);
}

function overflow_warnings(test: kunit): number {
  return test.k.log.dmesg().filter((l) => l.includes("ih ring buffer overflow")).length;
}

/** Every field of the vector arrives where amdgpu_ih_decode_iv_helper() reads it. */
async function iv_decode(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const seen = test_source(test, adev);
  const lut = mmIH_VMID_0_LUT + 5;
  const saved = RREG32(adev, lut);
  WREG32(adev, lut, 0x1234);
  kunit_add_action(test, () => WREG32(adev, lut, saved));
  const t0 = test.k.ktime_get();
  get_gpu_hw(test).ih.post({
    client_id: TEST_CLIENT, src_id: TEST_SRC, ring_id: 3, vmid: 5, vmid_src: 1, node_id: 2,
    src_data: [0xdeadbeef, 0x01234567, 0x89abcdef, 0xfeedface],
  });
  await test.k.msleep(1);
  KUNIT_ASSERT_EQ(test, seen.length, 1, "the vector was dispatched to its source");
  const e = seen[0]!;
  KUNIT_EXPECT_EQ(test, e.client_id, TEST_CLIENT);
  KUNIT_EXPECT_EQ(test, e.src_id, TEST_SRC);
  KUNIT_EXPECT_EQ(test, e.ring_id, 3);
  KUNIT_EXPECT_EQ(test, e.vmid, 5);
  KUNIT_EXPECT_EQ(test, e.vmid_src, 1);
  KUNIT_EXPECT_EQ(test, e.pasid, 0x1234, "PASID from the IH VMID LUT");
  KUNIT_EXPECT_EQ(test, e.node_id, 2);
  KUNIT_EXPECT_EQ(test, e.src_data.join(","), [0xdeadbeef, 0x01234567, 0x89abcdef, 0xfeedface].join(","));
  KUNIT_EXPECT_EQ(test, e.timestamp, Math.floor(t0 / IH_TIMESTAMP_NS) % 2 ** 48, "timestamp of the 100 MHz clock at posting");
  KUNIT_EXPECT_LE(test, e.timestamp, 2 ** 48 - 1, "48 bits");
  KUNIT_EXPECT_GE(test, adev.irq.ih.processed_timestamp, e.timestamp, "the ring's processed timestamp followed");
}

/** Three times around the ring in bursts the driver drains in between: nothing lost, nothing doubled. */
async function ring_wrap(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const seen = test_source(test, adev);
  const entries = adev.irq.ih.ring_size / 32;
  const burst = Math.floor(entries / 3);
  const total = 3 * entries + 17;
  const msis0 = get_gpu_hw(test).ih.stats.msis;
  const warns0 = overflow_warnings(test);
  for (let sent = 0; sent < total; sent += burst) {
    post_seq(test, sent, Math.min(burst, total - sent));
    await test.k.msleep(1);
  }
  KUNIT_EXPECT_TRUE(test, in_order(seen, 0, total), `all ${total} vectors once, in order (got ${seen.length})`);
  KUNIT_EXPECT_EQ(test, overflow_warnings(test), warns0, "no overflow");
  const msis = get_gpu_hw(test).ih.stats.msis - msis0;
  KUNIT_EXPECT_GE(test, msis, Math.ceil(total / burst), "one interrupt per burst at least");
  KUNIT_EXPECT_LE(test, msis, 2 * Math.ceil(total / burst), "bursts coalesce into few interrupts");
  KUNIT_EXPECT_EQ(test, adev.irq.ih.rptr, RREG32(adev, adev.irq.ih.regs!.ih_rb_wptr) & adev.irq.ih.ptr_mask, "drained");
}

/**
 * More vectors than the ring holds before the driver runs: the oldest are overwritten, the
 * driver warns once, skips to the oldest vector still intact and delivers the last
 * ring-size-minus-one vectors in order; afterwards the ring works normally.
 */
async function ring_overflow(test: kunit): Promise<void> {
  const adev = get_adev(test);
  const seen = test_source(test, adev);
  const hw = get_gpu_hw(test);
  const entries = adev.irq.ih.ring_size / 32;
  const total = entries + 100;
  const ov0 = hw.ih.stats.overflows;
  const warns0 = overflow_warnings(test);
  post_seq(test, 0, total); // all before the MSI can be taken
  await test.k.msleep(1);
  KUNIT_EXPECT_GE(test, hw.ih.stats.overflows - ov0, 1, "the hardware flagged the overflow");
  KUNIT_EXPECT_EQ(test, overflow_warnings(test) - warns0, 1, "the driver warned once");
  KUNIT_EXPECT_TRUE(test, in_order(seen, total - (entries - 1), total), `the newest ${entries - 1} vectors, in order (got ${seen.length})`);
  KUNIT_EXPECT_FALSE(test, (RREG32(adev, adev.irq.ih.regs!.ih_rb_wptr) & 0x80000000) !== 0, "RB_OVERFLOW cleared");
  seen.length = 0;
  post_seq(test, total, 10);
  await test.k.msleep(1);
  KUNIT_EXPECT_TRUE(test, in_order(seen, total, total + 10), "normal service afterwards");
  KUNIT_EXPECT_EQ(test, overflow_warnings(test) - warns0, 1, "no second warning");
}

const cases = [KUNIT_CASE(iv_decode), KUNIT_CASE(ring_wrap), KUNIT_CASE(ring_overflow)];

export const amdgpu_ih_test_suite: kunit_suite = {
  name: "amdgpu_ih",
  machine: gpu_machine("gfx90a", 128 * MiB),
  test_cases: cases,
};

export const amdgpu_ih_navi10_test_suite: kunit_suite = {
  name: "amdgpu_ih_navi10",
  machine: gpu_machine("navi10", 128 * MiB),
  test_cases: cases,
};
