import { Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { criErrorFromGrpc } from './errors.js';

/** The namespace containerd's CRI plugin keeps Kubernetes images in. */
export const CONTAINERD_K8S_NAMESPACE = 'k8s.io';

type Callback<T> = (err: ServiceError | null, value?: T) => void;
type UnaryMethod = (
  req: unknown,
  metadata: Metadata,
  options: { deadline?: Date },
  cb: Callback<unknown>,
) => { cancel(): void };

export interface UnaryCallOptions {
  /** Deadline in ms from now; undefined for none. */
  timeoutMs?: number;
  signal?: AbortSignal;
  metadata?: Metadata;
}

/**
 * One unary gRPC call on a client made by @grpc/grpc-js from a loaded proto: rejects with a
 * CriError naming the RPC and the endpoint; `signal` cancels the call.
 */
export function unaryCall<T>(
  client: Client,
  rpc: string,
  req: unknown,
  endpoint: string,
  opts: UnaryCallOptions = {},
): Promise<T> {
  const method = (client as unknown as Record<string, UnaryMethod>)[rpc];
  if (typeof method !== 'function') throw new Error(`gRPC client has no method ${rpc}`);
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const options = opts.timeoutMs === undefined ? {} : { deadline: new Date(Date.now() + opts.timeoutMs) };
    const onAbort = () => call.cancel();
    const call = method.call(client, req, opts.metadata ?? new Metadata(), options, (err, value) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(criErrorFromGrpc(err, rpc, endpoint));
      else resolve(value as T);
    });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Metadata selecting a containerd namespace (containerd's native services are namespaced). */
export function containerdNamespace(namespace: string): Metadata {
  const metadata = new Metadata();
  metadata.set('containerd-namespace', namespace);
  return metadata;
}
