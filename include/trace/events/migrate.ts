// Mirrors include/trace/events/migrate.h (Linux 6.8): the migration-entry tracepoints
// set_migration_pte (a mapping became a migration entry) and remove_migration_pte (a migration
// entry became a mapping of the destination again). Fields as TP_STRUCT__entry: addr, pte
// (the new entry's value) and order (0: kemu migrates base pages only). Linux fires
// set_migration_pte from try_to_migrate_one() only; kemu also fires it where
// migrate_vma_collect_pmd() installs migration entries, so device migrations show them too.

import { TRACE_EVENT } from "../../linux/tracepoint.ts";

interface migration_pte_args {
  [k: string]: unknown;
  addr: number;
  pte: string;
  order: number;
}

const fmt = (a: migration_pte_args) => `addr=${a.addr.toString(16)}, pte=${a.pte.replace(/^0x0*/, "") || "0"} order=${a.order}`;

export const trace_set_migration_pte = TRACE_EVENT<migration_pte_args>("migrate", "set_migration_pte", fmt);
export const trace_remove_migration_pte = TRACE_EVENT<migration_pte_args>("migrate", "remove_migration_pte", fmt);
