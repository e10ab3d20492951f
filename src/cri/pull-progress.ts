import type { IngestStatus } from './types.js';

export interface PullProgressSnapshot {
  /** Layers seen downloading so far (a layer already in the content store is never seen). */
  layersSeen: number;
  /** Of those, layers whose download finished (their ingest is gone). */
  layersDone: number;
  /** Layer bytes downloaded so far, finished layers counted whole. */
  bytes: number;
  /** Sum of the sizes of the layers seen. */
  totalBytes: number;
}

interface LayerState {
  offset: number;
  total: number;
  done: boolean;
}

/**
 * Folds successive snapshots of containerd's content ingests into per-layer pull progress.
 * CRI PullImage is unary and reports nothing until it ends, but containerd writes each blob
 * through a content ingest named by its role and digest ("layer-sha256:...", from
 * remotes.MakeRefKey); an ingest that disappears has been committed. Pure: fed by a poller.
 */
export class PullProgress {
  private readonly layers = new Map<string, LayerState>();

  observe(statuses: readonly IngestStatus[]): PullProgressSnapshot {
    const active = new Set<string>();
    for (const s of statuses) {
      if (!s.ref.includes('layer-')) continue;
      const key = s.expected || s.ref;
      active.add(key);
      const prev = this.layers.get(key);
      this.layers.set(key, {
        offset: Math.max(prev?.offset ?? 0, s.offset),
        total: s.total || prev?.total || 0,
        done: false,
      });
    }
    for (const [key, layer] of this.layers) {
      if (!active.has(key) && !layer.done)
        this.layers.set(key, { ...layer, offset: layer.total, done: true });
    }
    return this.snapshot();
  }

  snapshot(): PullProgressSnapshot {
    let bytes = 0;
    let totalBytes = 0;
    let done = 0;
    for (const layer of this.layers.values()) {
      bytes += layer.offset;
      totalBytes += layer.total;
      if (layer.done) done++;
    }
    return { layersSeen: this.layers.size, layersDone: done, bytes, totalBytes };
  }
}
