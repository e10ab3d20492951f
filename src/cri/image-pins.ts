import { filterValue, labelField, type ContainerdImage, type ImageRecordStore } from './containerd-images.js';

/**
 * Pinning an image against the kubelet's image GC. containerd's CRI plugin (1.7+, 2.x) reports
 * CRI Image.pinned = true, which the kubelet's image GC skips, while any record naming the image
 * carries io.cri-containerd.pinned=pinned; the image is unpinned only once no record carries it.
 * One image has several records with the same target: the tag, `repo@sha256:...` and the CRI's
 * `sha256:<image id>`, so every one of them is labelled.
 *
 * Hoist adds its own marker beside the pin and only ever removes a pin that carries the marker:
 * a pin somebody else set (the CRI's pinned_images config, an operator with ctr) stays, and is
 * never marked, so Hoist never takes it over. (A pin added by somebody else to a record Hoist had
 * already pinned cannot be told apart: it goes when Hoist unpins.)
 */

export const CRI_PINNED_LABEL = 'io.cri-containerd.pinned';
export const CRI_PINNED_VALUE = 'pinned';
export const HOIST_PINNED_LABEL = 'hoist.dev/pinned';
export const HOIST_PINNED_VALUE = 'true';

export interface PinOutcome {
  /** The records naming the image (all of them share its target). */
  records: string[];
  /** Records this call labelled. */
  changed: string[];
  /** Records pinned by somebody else, left as they were. */
  foreign: string[];
}

const pinnedByAnyone = (r: ContainerdImage) => r.labels[CRI_PINNED_LABEL] === CRI_PINNED_VALUE;
const markedByHoist = (r: ContainerdImage) => r.labels[HOIST_PINNED_LABEL] === HOIST_PINNED_VALUE;

export class ImagePins {
  constructor(private readonly store: ImageRecordStore) {}

  /** Every record whose target is the target of the record `image` names; [] when absent. */
  async records(image: string): Promise<ContainerdImage[]> {
    const named = await this.store.get(image);
    if (!named) return [];
    return this.recordsOf(named.target.digest);
  }

  async recordsOf(targetDigest: string): Promise<ContainerdImage[]> {
    return this.store.list([`target.digest==${filterValue(targetDigest)}`]);
  }

  /** Labels every record of the image pinned, with Hoist's marker; idempotent. */
  async pin(image: string): Promise<PinOutcome> {
    const records = await this.records(image);
    const out: PinOutcome = { records: records.map((r) => r.name), changed: [], foreign: [] };
    for (const record of records) {
      if (pinnedByAnyone(record) && !markedByHoist(record)) {
        out.foreign.push(record.name);
        continue;
      }
      if (pinnedByAnyone(record)) continue;
      await this.store.setLabels(record, {
        [CRI_PINNED_LABEL]: CRI_PINNED_VALUE,
        [HOIST_PINNED_LABEL]: HOIST_PINNED_VALUE,
      });
      out.changed.push(record.name);
    }
    return out;
  }

  /** Removes the pins Hoist set on the image's records; others' pins stay. Idempotent. */
  async unpin(image: string): Promise<PinOutcome> {
    const named = await this.store.get(image);
    if (!named) return { records: [], changed: [], foreign: [] };
    return this.unpinRecords(await this.recordsOf(named.target.digest));
  }

  /** The records Hoist pinned, whatever image they belong to (for a sweep after a restart). */
  async pinnedByHoist(): Promise<ContainerdImage[]> {
    return this.store.list([`${labelField(HOIST_PINNED_LABEL)}==${HOIST_PINNED_VALUE}`]);
  }

  /** Removes Hoist's pins from every record whose target is not in `keep` (digests). */
  async unpinAllExcept(keep: ReadonlySet<string>): Promise<PinOutcome> {
    const stale = (await this.pinnedByHoist()).filter((r) => !keep.has(r.target.digest));
    return this.unpinRecords(stale);
  }

  private async unpinRecords(records: ContainerdImage[]): Promise<PinOutcome> {
    const out: PinOutcome = { records: records.map((r) => r.name), changed: [], foreign: [] };
    for (const record of records) {
      if (!markedByHoist(record)) {
        if (pinnedByAnyone(record)) out.foreign.push(record.name);
        continue;
      }
      await this.store.setLabels(record, { [CRI_PINNED_LABEL]: undefined, [HOIST_PINNED_LABEL]: undefined });
      out.changed.push(record.name);
    }
    return out;
  }
}
