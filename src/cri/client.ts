import { credentials, type Client, type Metadata } from '@grpc/grpc-js';
import { criErrorFromGrpc } from './errors.js';
import { CONTAINERD_K8S_NAMESPACE, containerdNamespace, unaryCall } from './grpc-call.js';
import { criProtos } from './proto.js';
import type {
  ContentInfo,
  CriImage,
  FilesystemUsage,
  IngestStatus,
  RegistryAuth,
  RuntimeVersion,
} from './types.js';

export interface CriClientOptions {
  /** Socket path (see resolveRuntimeSocket). */
  socket: string;
  /** Deadline for the short calls (everything but PullImage); default 30 s. */
  callTimeoutMs?: number;
}

/** The CRI API version string clients send in VersionRequest. */
const CRI_API_VERSION = 'v1';
/** kubelet's limit for CRI responses (ListImages on a busy node is large). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

type StreamMethod = (req: unknown, metadata: Metadata, options: { deadline?: Date }) => NodeJS.EventEmitter;

interface RawImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  pinned: boolean;
}

function toImage(raw: RawImage): CriImage {
  return {
    id: raw.id,
    repoTags: raw.repoTags,
    repoDigests: raw.repoDigests,
    size: Number(raw.size),
    pinned: raw.pinned,
  };
}

/**
 * A client for the CRI runtime.v1 ImageService and RuntimeService.Version over the runtime's
 * unix socket (k8s.io/cri-api api.proto), plus containerd's content ListStatuses for pull progress.
 */
export class CriClient {
  readonly socket: string;
  readonly endpoint: string;
  private readonly runtime: Client;
  private readonly images: Client;
  private readonly content: Client;
  private readonly callTimeoutMs: number;

  constructor(opts: CriClientOptions) {
    this.socket = opts.socket;
    this.endpoint = `unix://${opts.socket}`;
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    const protos = criProtos() as unknown as {
      runtime: { v1: { RuntimeService: typeof Client; ImageService: typeof Client } };
      containerd: { services: { content: { v1: { Content: typeof Client } } } };
    };
    const creds = credentials.createInsecure();
    const channelOptions = {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      // The target is a unix socket path; the authority header is otherwise the path itself.
      'grpc.default_authority': 'localhost',
    };
    const target = `unix:${opts.socket}`;
    this.runtime = new protos.runtime.v1.RuntimeService(target, creds, channelOptions);
    this.images = new protos.runtime.v1.ImageService(target, creds, channelOptions);
    this.content = new protos.containerd.services.content.v1.Content(target, creds, channelOptions);
  }

  private call<T>(
    client: Client,
    rpc: string,
    req: unknown,
    opts: { deadline?: boolean; signal?: AbortSignal; metadata?: Metadata } = {},
  ): Promise<T> {
    return unaryCall<T>(client, rpc, req, this.endpoint, {
      ...(opts.deadline === false ? {} : { timeoutMs: this.callTimeoutMs }),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.metadata ? { metadata: opts.metadata } : {}),
    });
  }

  async version(): Promise<RuntimeVersion> {
    return this.call<RuntimeVersion>(this.runtime, 'Version', { version: CRI_API_VERSION });
  }

  /**
   * PullImage: returns the image reference the runtime resolved (containerd: the image ID).
   * No deadline: a large image takes as long as it takes, and containerd itself cancels a pull
   * that stops making progress (image_pull_progress_timeout). `signal` cancels the call.
   */
  async pullImage(image: string, opts: { auth?: RegistryAuth; signal?: AbortSignal } = {}): Promise<string> {
    const req = { image: { image }, ...(opts.auth ? { auth: opts.auth } : {}) };
    const res = await this.call<{ imageRef: string }>(this.images, 'PullImage', req, {
      deadline: false,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return res.imageRef;
  }

  async listImages(filter?: string): Promise<CriImage[]> {
    const req = filter ? { filter: { image: { image: filter } } } : {};
    const res = await this.call<{ images: RawImage[] }>(this.images, 'ListImages', req);
    return res.images.map(toImage);
  }

  /** ImageStatus: the image, or undefined when the runtime does not have it. */
  async imageStatus(image: string): Promise<CriImage | undefined> {
    const res = await this.call<{ image: RawImage | null }>(this.images, 'ImageStatus', { image: { image } });
    return res.image ? toImage(res.image) : undefined;
  }

  /** RemoveImage: idempotent per the CRI contract (no error when already gone). */
  async removeImage(image: string): Promise<void> {
    await this.call(this.images, 'RemoveImage', { image: { image } });
  }

  async imageFsInfo(): Promise<FilesystemUsage[]> {
    const res = await this.call<{
      imageFilesystems: Array<{
        timestamp: number;
        fsId: { mountpoint: string } | null;
        usedBytes: { value: number } | null;
        inodesUsed: { value: number } | null;
      }>;
    }>(this.images, 'ImageFsInfo', {});
    return res.imageFilesystems.map((fs) => ({
      timestampNs: Number(fs.timestamp),
      mountpoint: fs.fsId?.mountpoint ?? '',
      usedBytes: Number(fs.usedBytes?.value ?? 0),
      inodesUsed: Number(fs.inodesUsed?.value ?? 0),
    }));
  }

  /**
   * containerd only: the content ingests in progress in the CRI plugin's namespace, i.e. the
   * blobs a PullImage is downloading right now. Rejects (UNIMPLEMENTED) on other runtimes.
   */
  async ingestStatuses(): Promise<IngestStatus[]> {
    const metadata = containerdNamespace(CONTAINERD_K8S_NAMESPACE);
    const res = await this.call<{ statuses: IngestStatus[] }>(
      this.content,
      'ListStatuses',
      { filters: [] },
      { metadata },
    );
    return res.statuses.map((s) => ({
      ref: s.ref,
      offset: Number(s.offset),
      total: Number(s.total),
      expected: s.expected,
    }));
  }

  /**
   * containerd only: every blob in the CRI plugin's content store (a server-streaming List).
   * Comparing the lists before and after a pull gives exactly what the pull downloaded.
   */
  async listContent(): Promise<ContentInfo[]> {
    const metadata = containerdNamespace(CONTAINERD_K8S_NAMESPACE);
    const method = (this.content as unknown as Record<string, StreamMethod>).list;
    if (typeof method !== 'function') throw new Error('CRI client has no method List');
    return new Promise<ContentInfo[]>((resolve, reject) => {
      const out: ContentInfo[] = [];
      const stream = method.call(this.content, { filters: [] }, metadata, {
        deadline: new Date(Date.now() + this.callTimeoutMs),
      });
      stream.on(
        'data',
        (res: { info: Array<{ digest: string; size: number; labels: Record<string, string> }> }) => {
          for (const i of res.info)
            out.push({ digest: i.digest, size: Number(i.size), labels: { ...i.labels } });
        },
      );
      stream.on('error', (err: unknown) => reject(criErrorFromGrpc(err, 'content.List', this.endpoint)));
      stream.on('end', () => resolve(out));
    });
  }

  close(): void {
    this.runtime.close();
    this.images.close();
    this.content.close();
  }
}
