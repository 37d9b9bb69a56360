// Mirrors drivers/iommu/iommu.c (Linux 6.5), reduced to what the AMD IOMMUv2 path calls: the
// IOMMU driver registers its iommu_ops, every device it translates for gets an iommu_group
// (one device per group here) with a default domain, and users (iommu_v2) allocate an
// unmanaged domain, attach a group to it and later detach it (which re-attaches the default
// domain). DMA-API mapping, IOVA allocation and domain page-table ops are not modelled.

import "reflect-metadata";
import { injectable } from "tsyringe";
import { EBUSY, EINVAL, ENODEV } from "../include/uapi/asm-generic/errno.ts";
import type { device } from "../drivers/base/core.ts";

export const IOMMU_DOMAIN_BLOCKED = 0;
/** __IOMMU_DOMAIN_PT: untranslated DMA passes through. */
export const IOMMU_DOMAIN_IDENTITY = 1 << 2;
/** __IOMMU_DOMAIN_PAGING: a domain a driver manages itself. */
export const IOMMU_DOMAIN_UNMANAGED = 1 << 0;

/** struct iommu_domain: the generic handle; drivers embed it in their own domain. */
export class iommu_domain {
  type = IOMMU_DOMAIN_UNMANAGED;
  ops: iommu_ops | null = null;
}

export interface iommu_ops {
  readonly name: string;
  /** Whether this IOMMU translates for `dev` (the driver's probe_device succeeded). */
  probe_device(dev: device): number;
  release_device(dev: device): void;
  domain_alloc(type: number): iommu_domain | null;
  domain_free(dom: iommu_domain): void;
  /** Attaches `dev` to `dom`, leaving whatever domain it was in. */
  attach_dev(dom: iommu_domain, dev: device): number;
  /** The domain type the driver wants as a device's default domain. */
  def_domain_type(dev: device): number;
}

/** struct iommu_group: here always a single device. */
export class iommu_group {
  refcount = 1;
  default_domain: iommu_domain | null = null;
  /** The domain the group is attached to right now. */
  domain: iommu_domain | null = null;

  constructor(
    readonly id: number,
    readonly dev: device,
  ) {}
}

/** The machine's IOMMU core state (a service): the registered driver and the groups it built. */
@injectable()
export class iommu_core {
  ops: iommu_ops | null = null;
  private readonly groups = new Map<device, iommu_group>();
  private next_group = 0;

  /** iommu_device_register(): the IOMMU driver announces itself. */
  iommu_device_register(ops: iommu_ops): number {
    if (this.ops) return -EBUSY;
    this.ops = ops;
    return 0;
  }

  iommu_device_unregister(ops: iommu_ops): void {
    if (this.ops === ops) this.ops = null;
  }

  /**
   * iommu_probe_device() + iommu_group_get_for_dev(): gives `dev` a group and attaches the
   * default domain the driver asks for. -ENODEV when the IOMMU does not translate for it.
   */
  iommu_probe_device(dev: device): number {
    const ops = this.ops;
    if (!ops) return -ENODEV;
    if (this.groups.has(dev)) return 0;
    const ret = ops.probe_device(dev);
    if (ret) return ret;
    const group = new iommu_group(this.next_group++, dev);
    const dom = this.__iommu_domain_alloc(ops.def_domain_type(dev));
    if (!dom) {
      ops.release_device(dev);
      return -EINVAL;
    }
    group.default_domain = dom;
    const err = ops.attach_dev(dom, dev);
    if (err) {
      ops.domain_free(dom);
      ops.release_device(dev);
      return err;
    }
    group.domain = dom;
    this.groups.set(dev, group);
    return 0;
  }

  /** iommu_release_device(): the group goes away with its default domain. */
  iommu_release_device(dev: device): void {
    const g = this.groups.get(dev);
    if (!g || !this.ops) return;
    this.groups.delete(dev);
    this.ops.release_device(dev);
    if (g.default_domain) this.ops.domain_free(g.default_domain);
  }

  /** iommu_group_get(): a reference to the device's group, or null. */
  iommu_group_get(dev: device): iommu_group | null {
    const g = this.groups.get(dev) ?? null;
    if (g) g.refcount++;
    return g;
  }

  iommu_group_put(group: iommu_group | null): void {
    if (group) group.refcount--;
  }

  private __iommu_domain_alloc(type: number): iommu_domain | null {
    const dom = this.ops?.domain_alloc(type) ?? null;
    if (!dom) return null;
    dom.type = type;
    dom.ops = this.ops;
    return dom;
  }

  /** iommu_domain_alloc(bus): an unmanaged domain of the bus's IOMMU. */
  iommu_domain_alloc(): iommu_domain | null {
    return this.__iommu_domain_alloc(IOMMU_DOMAIN_UNMANAGED);
  }

  iommu_domain_free(dom: iommu_domain): void {
    dom.ops?.domain_free(dom);
  }

  /** iommu_attach_group(): only from the default domain (-EBUSY if someone else owns the group). */
  iommu_attach_group(dom: iommu_domain, group: iommu_group): number {
    if (group.domain !== group.default_domain) return -EBUSY;
    const ret = dom.ops!.attach_dev(dom, group.dev);
    if (ret) return ret;
    group.domain = dom;
    return 0;
  }

  /** iommu_detach_group(): back to the default domain. */
  iommu_detach_group(dom: iommu_domain, group: iommu_group): void {
    if (group.domain !== dom || !group.default_domain) return;
    dom.ops!.attach_dev(group.default_domain, group.dev);
    group.domain = group.default_domain;
  }

  /** iommu_get_dma_domain(): the device's default domain. */
  iommu_get_dma_domain(dev: device): iommu_domain | null {
    return this.groups.get(dev)?.default_domain ?? null;
  }

  iommu_get_domain_for_dev(dev: device): iommu_domain | null {
    return this.groups.get(dev)?.domain ?? null;
  }
}
