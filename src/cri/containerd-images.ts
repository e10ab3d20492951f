import { credentials, type Client } from '@grpc/grpc-js';
import { CriError } from './errors.js';
import { CONTAINERD_K8S_NAMESPACE, containerdNamespace, unaryCall } from './grpc-call.js';
import { criProtos } from './proto.js';

/**
 * A client for containerd's native image store (containerd.services.images.v1.Images) on the
 * same socket as CRI, in the CRI plugin's namespace. CRI has no call to label an image; pinning
 * (io.cri-containerd.pinned) is a label on containerd's image records, so it goes through here.
 * containerd only: other runtimes answer UNIMPLEMENTED.
 */

export interface ImageTarget {
  mediaType: string;
  /** The manifest or index digest the record names. */
  digest: string;
  size: number;
}

/** One containerd image record: a name (tag, repo@digest or the CRI's sha256:<id>) and its target. */
export interface ContainerdImage {
  name: string;
  labels: Record<string, string>;
  target: ImageTarget;
}

/** What the pin logic needs from the image store (a fake implements it in unit tests). */
export interface ImageRecordStore {
  get(name: string): Promise<ContainerdImage | undefined>;
  /** Records matching any of the filters (containerd filter syntax); none: every record. */
  list(filters?: string[]): Promise<ContainerdImage[]>;
  /** Sets (string) or removes (undefined) the given labels of one record, leaving the rest. */
  setLabels(image: ContainerdImage, labels: Record<string, string | undefined>): Promise<ContainerdImage>;
}

export interface ContainerdImagesOptions {
  socket: string;
  /** Default k8s.io, where the CRI plugin keeps Kubernetes images. */
  namespace?: string;
  callTimeoutMs?: number;
}

interface RawImage {
  name: string;
  labels: Record<string, string>;
  target: { mediaType: string; digest: string; size: number } | null;
}

function toImage(raw: RawImage): ContainerdImage {
  return {
    name: raw.name,
    labels: { ...raw.labels },
    target: {
      mediaType: raw.target?.mediaType ?? '',
      digest: raw.target?.digest ?? '',
      size: Number(raw.target?.size ?? 0),
    },
  };
}

/** A containerd filter value: bare when it is plain, else quoted as containerd's parser takes it. */
export function filterValue(value: string): string {
  return /^[A-Za-z0-9_.:@/+-]+$/.test(value) ? value : JSON.stringify(value);
}

/** A containerd filter field path for a label key (quoted: keys hold dots and slashes). */
export function labelField(key: string): string {
  return `labels.${JSON.stringify(key)}`;
}

export class ContainerdImages implements ImageRecordStore {
  readonly endpoint: string;
  private readonly client: Client;
  private readonly namespace: string;
  private readonly callTimeoutMs: number;

  constructor(opts: ContainerdImagesOptions) {
    this.endpoint = `unix://${opts.socket}`;
    this.namespace = opts.namespace ?? CONTAINERD_K8S_NAMESPACE;
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    const protos = criProtos() as unknown as {
      containerd: { services: { images: { v1: { Images: typeof Client } } } };
    };
    this.client = new protos.containerd.services.images.v1.Images(
      `unix:${opts.socket}`,
      credentials.createInsecure(),
      { 'grpc.default_authority': 'localhost', 'grpc.max_receive_message_length': 16 * 1024 * 1024 },
    );
  }

  private call<T>(rpc: string, req: unknown): Promise<T> {
    return unaryCall<T>(this.client, rpc, req, this.endpoint, {
      timeoutMs: this.callTimeoutMs,
      metadata: containerdNamespace(this.namespace),
    });
  }

  async get(name: string): Promise<ContainerdImage | undefined> {
    try {
      const res = await this.call<{ image: RawImage | null }>('Get', { name });
      return res.image ? toImage(res.image) : undefined;
    } catch (err) {
      if (err instanceof CriError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  async list(filters: string[] = []): Promise<ContainerdImage[]> {
    const res = await this.call<{ images: RawImage[] }>('List', { filters });
    return res.images.map(toImage);
  }

  /**
   * Update with the field mask `labels.KEY` per key: containerd sets each masked label to the
   * request's value, or deletes it when the request lacks it, and leaves every other field alone.
   * The record goes back whole (name, target) because containerd 2.x reads the target as sent.
   */
  async setLabels(
    image: ContainerdImage,
    labels: Record<string, string | undefined>,
  ): Promise<ContainerdImage> {
    const next: Record<string, string> = { ...image.labels };
    for (const [key, value] of Object.entries(labels)) {
      if (value === undefined) delete next[key];
      else next[key] = value;
    }
    const res = await this.call<{ image: RawImage | null }>('Update', {
      image: { name: image.name, labels: next, target: image.target },
      updateMask: { paths: Object.keys(labels).map((key) => `labels.${key}`) },
    });
    return res.image ? toImage(res.image) : { ...image, labels: next };
  }

  close(): void {
    this.client.close();
  }
}
