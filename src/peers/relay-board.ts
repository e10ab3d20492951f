/**
 * The relay tree of one node for the blobs it hands out to peers. A node that is asked for a blob
 * (usually its rendezvous fetcher) serves at most `fanout` peers itself; later askers are sent to a
 * peer that is already receiving the blob, which serves them from its own partial file as the
 * bytes arrive. With fanout 1 that is a pipeline: the blob crosses each node's uplink once, and
 * the last node finishes a few round trips after the first, instead of the first node's uplink
 * carrying N copies.
 *
 * Pure bookkeeping with an injected clock: the peer server asks `assign` and serves or redirects.
 */
export interface RelayBoardOptions {
  /** Peers one node serves a blob to at once (its own and each relay's). */
  fanout: number;
  /** How long a blob's tree is remembered after its last assignment. */
  idleMs: number;
  /** Trees kept at most (oldest dropped first): memory stays bounded however many blobs pass. */
  maxBlobs: number;
  now?: () => number;
}

export type Assignment =
  /** Serve the asker from here. */
  | { kind: 'serve'; depth: number }
  /** Send the asker to `relay`, which is receiving the blob and serves it onward. */
  | { kind: 'relay'; relay: string; depth: number };

interface Member {
  parent: string | undefined;
  children: number;
  depth: number;
}

interface Tree {
  /** Members in the order they were placed, the serving node itself first (id ''). */
  members: Map<string, Member>;
  failed: Set<string>;
  touched: number;
}

const SELF = '';

export class RelayBoard {
  private readonly trees = new Map<string, Tree>();
  private readonly now: () => number;

  constructor(private readonly options: RelayBoardOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Where `asker` gets `digest`: from here while this node has room, else from the member placed
   * earliest that still has room (breadth first: depth grows as log_fanout of the askers).
   * `failedRelay` is a relay the asker could not use (gone, no longer holding the blob, too slow):
   * it is not offered again, and the asker is placed anew. The asker's own descendants are never
   * offered to it, so the tree has no cycles.
   */
  assign(digest: string, asker: string, failedRelay?: string): Assignment {
    this.expire();
    const tree = this.tree(digest);
    if (failedRelay !== undefined && failedRelay !== SELF) tree.failed.add(failedRelay);
    const previous = tree.members.get(asker);
    if (previous) {
      // Asking again: it lost its source. Free its old slot and place it anew.
      const parent = previous.parent === undefined ? undefined : tree.members.get(previous.parent);
      if (parent) parent.children = Math.max(0, parent.children - 1);
    }
    const blocked = this.descendants(tree, asker);
    blocked.add(asker);
    let chosen: string | undefined;
    for (const [id, m] of tree.members) {
      if (blocked.has(id) || tree.failed.has(id)) continue;
      if (m.children < this.options.fanout) {
        chosen = id;
        break;
      }
    }
    // Everyone is full (or failed): serve from here rather than make the asker wait.
    chosen ??= SELF;
    const parent = tree.members.get(chosen) as Member;
    parent.children++;
    const depth = parent.depth + 1;
    // A re-placed asker keeps its own children: they still read from it.
    tree.members.delete(asker);
    tree.members.set(asker, { parent: chosen, children: previous?.children ?? 0, depth });
    return chosen === SELF ? { kind: 'serve', depth } : { kind: 'relay', relay: chosen, depth };
  }

  /** A peer this node served directly has finished or left: its slot is free again. */
  release(digest: string, asker: string): void {
    const tree = this.trees.get(digest);
    const member = tree?.members.get(asker);
    if (!tree || !member || member.parent !== SELF) return;
    const self = tree.members.get(SELF) as Member;
    self.children = Math.max(0, self.children - 1);
    member.parent = undefined;
  }

  /** Blobs with a tree (for status and tests). */
  get size(): number {
    return this.trees.size;
  }

  private tree(digest: string): Tree {
    let tree = this.trees.get(digest);
    if (tree) {
      // Most recently used last, so expiry and the size cap drop the oldest first.
      this.trees.delete(digest);
    } else {
      tree = {
        members: new Map([[SELF, { parent: undefined, children: 0, depth: 0 }]]),
        failed: new Set(),
        touched: 0,
      };
      while (this.trees.size >= this.options.maxBlobs) {
        const oldest = this.trees.keys().next().value as string;
        this.trees.delete(oldest);
      }
    }
    tree.touched = this.now();
    this.trees.set(digest, tree);
    return tree;
  }

  private descendants(tree: Tree, root: string): Set<string> {
    const out = new Set<string>();
    let grew = true;
    while (grew) {
      grew = false;
      for (const [id, m] of tree.members) {
        if (out.has(id) || m.parent === undefined) continue;
        if (m.parent === root || out.has(m.parent)) {
          out.add(id);
          grew = true;
        }
      }
    }
    return out;
  }

  private expire(): void {
    const cutoff = this.now() - this.options.idleMs;
    for (const [digest, tree] of this.trees) {
      if (tree.touched > cutoff) break;
      this.trees.delete(digest);
    }
  }
}
