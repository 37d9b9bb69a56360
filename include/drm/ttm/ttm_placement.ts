// Mirrors include/drm/ttm/ttm_placement.h (Linux 6.8): memory types and placement requests.

export const TTM_PL_SYSTEM = 0;
export const TTM_PL_TT = 1;
export const TTM_PL_VRAM = 2;
export const TTM_PL_PRIV = 3;
export const TTM_NUM_MEM_TYPES = 8;

/** The resource must be physically contiguous. */
export const TTM_PL_FLAG_CONTIGUOUS = 1 << 0;
/** Allocate from the top of the address range. */
export const TTM_PL_FLAG_TOPDOWN = 1 << 1;
/** A bounce placement used only during a multi-hop move. */
export const TTM_PL_FLAG_TEMPORARY = 1 << 2;

/** struct ttm_place: a memory type, optional page range [fpfn, lpfn) (0 = no limit), flags. */
export interface ttm_place {
  fpfn: number;
  lpfn: number;
  mem_type: number;
  flags: number;
}

/** struct ttm_placement: the preferred places, then the ones worth evicting for. */
export interface ttm_placement {
  num_placement: number;
  placement: ttm_place[];
  num_busy_placement: number;
  busy_placement: ttm_place[];
}
