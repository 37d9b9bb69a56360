// Mirrors lib/interval_tree.c + include/linux/interval_tree_generic.h (Linux 6.8): an interval
// tree of closed intervals [start, last] keyed by start, augmented with the largest `last` in
// each subtree so overlap queries prune whole subtrees. The kernel balances with a red-black
// tree; kemu uses an AVL tree (same O(log n) bounds, simpler to read). Iteration order and the
// iter_first/iter_next contract are the kernel's: overlapping nodes in ascending start order.

export class interval_tree_node {
  /** Largest `last` in the subtree rooted here (the kernel's __subtree_last). */
  __subtree_last = 0;
  left: interval_tree_node | null = null;
  right: interval_tree_node | null = null;
  parent: interval_tree_node | null = null;
  height = 1;

  constructor(
    public start = 0,
    public last = 0,
  ) {}
}

/** rb_root_cached: the tree root plus its element count. */
export class rb_root_cached {
  root: interval_tree_node | null = null;
  count = 0;
}

export const RB_ROOT_CACHED = (): rb_root_cached => new rb_root_cached();

function height(n: interval_tree_node | null): number {
  return n ? n.height : 0;
}

function subtree_last(n: interval_tree_node | null): number {
  return n ? n.__subtree_last : -Infinity;
}

function update(n: interval_tree_node): void {
  n.height = 1 + Math.max(height(n.left), height(n.right));
  n.__subtree_last = Math.max(n.last, subtree_last(n.left), subtree_last(n.right));
}

function replace_child(root: rb_root_cached, parent: interval_tree_node | null, old: interval_tree_node, nw: interval_tree_node | null): void {
  if (!parent) root.root = nw;
  else if (parent.left === old) parent.left = nw;
  else parent.right = nw;
  if (nw) nw.parent = parent;
}

function rotate_left(root: rb_root_cached, x: interval_tree_node): interval_tree_node {
  const y = x.right!;
  replace_child(root, x.parent, x, y);
  x.right = y.left;
  if (y.left) y.left.parent = x;
  y.left = x;
  x.parent = y;
  update(x);
  update(y);
  return y;
}

function rotate_right(root: rb_root_cached, x: interval_tree_node): interval_tree_node {
  const y = x.left!;
  replace_child(root, x.parent, x, y);
  x.left = y.right;
  if (y.right) y.right.parent = x;
  y.right = x;
  x.parent = y;
  update(x);
  update(y);
  return y;
}

/** Restores AVL balance and the augmented maxima from `n` up to the root. */
function rebalance_up(root: rb_root_cached, n: interval_tree_node | null): void {
  while (n) {
    update(n);
    const bal = height(n.left) - height(n.right);
    if (bal > 1) {
      if (height(n.left!.left) < height(n.left!.right)) rotate_left(root, n.left!);
      n = rotate_right(root, n);
    } else if (bal < -1) {
      if (height(n.right!.right) < height(n.right!.left)) rotate_right(root, n.right!);
      n = rotate_left(root, n);
    }
    n = n.parent;
  }
}

export function interval_tree_insert(node: interval_tree_node, root: rb_root_cached): void {
  node.left = node.right = node.parent = null;
  node.height = 1;
  node.__subtree_last = node.last;
  root.count++;
  let cur: interval_tree_node | null = root.root;
  if (!cur) {
    root.root = node;
    return;
  }
  for (;;) {
    const next: interval_tree_node | null = node.start < cur.start ? cur.left : cur.right;
    if (!next) break;
    cur = next;
  }
  if (node.start < cur.start) cur.left = node;
  else cur.right = node;
  node.parent = cur;
  rebalance_up(root, cur);
}

export function interval_tree_remove(node: interval_tree_node, root: rb_root_cached): void {
  root.count--;
  let fix: interval_tree_node | null;
  if (node.left && node.right) {
    // Swap in the in-order successor, which has no left child.
    let s = node.right;
    while (s.left) s = s.left;
    fix = s.parent === node ? s : s.parent;
    if (s.parent !== node) {
      replace_child(root, s.parent, s, s.right);
      s.right = node.right;
      s.right.parent = s;
    }
    replace_child(root, node.parent, node, s);
    s.left = node.left;
    s.left.parent = s;
  } else {
    fix = node.parent;
    replace_child(root, node.parent, node, node.left ?? node.right);
  }
  node.left = node.right = node.parent = null;
  rebalance_up(root, fix);
}

/** Leftmost node of the subtree at `node` that overlaps [start, last]. */
function subtree_search(node: interval_tree_node, start: number, last: number): interval_tree_node | null {
  for (;;) {
    if (node.left && start <= node.left.__subtree_last) {
      node = node.left;
      continue;
    }
    if (node.start > last) return null;
    if (start <= node.last) return node;
    if (!node.right || start > node.right.__subtree_last) return null;
    node = node.right;
  }
}

export function interval_tree_iter_first(root: rb_root_cached, start: number, last: number): interval_tree_node | null {
  const node = root.root;
  if (!node || node.__subtree_last < start) return null;
  return subtree_search(node, start, last);
}

export function interval_tree_iter_next(node: interval_tree_node, start: number, last: number): interval_tree_node | null {
  let right = node.right;
  for (;;) {
    if (right && start <= right.__subtree_last) return subtree_search(right, start, last);
    // Climb until we arrive from a left child: that parent is the next node in order.
    let prev: interval_tree_node;
    do {
      prev = node;
      const p = node.parent;
      if (!p) return null;
      node = p;
    } while (node.right === prev);
    right = node.right;
    if (node.start > last) return null;
    if (start <= node.last) return node;
  }
}

/**
 * All nodes overlapping [start, last] in ascending start order. The successor is found before
 * each node is yielded, so the caller may remove the node it was given.
 */
export function* interval_tree_for_each(root: rb_root_cached, start: number, last: number): Generator<interval_tree_node> {
  let cur = interval_tree_iter_first(root, start, last);
  while (cur) {
    const next = interval_tree_iter_next(cur, start, last);
    yield cur;
    cur = next;
  }
}
