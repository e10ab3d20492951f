/**
 * Moving one layer between registries: download, decompress, convert, upload, all streaming
 * (the converted blob is PATCHed to the destination, chunk by chunk, while it is produced), and
 * plain blob copies
 * (mount when both repositories share a registry).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Digester, type Descriptor } from '../oci/index.js';
import { blobExists, BlobUpload, mountBlob, type RegistryClient } from '../registry-client/index.js';
import { convertLayer, type ConvertedLayer, type ConvertLayerOptions } from './convert-layer.js';
import { EstargzError } from './errors.js';

export interface RepoRef {
  client: RegistryClient;
  repo: string;
}

export interface TransferProgress {
  /** Compressed source bytes read so far. */
  readBytes: number;
  /** eStargz bytes uploaded so far. */
  writtenBytes: number;
}

/**
 * PATCH size for the converted blob. A chunk is gathered from the converter's pieces, concatenated
 * into one buffer (the pieces are then dropped), and that buffer is the request body as it is:
 * undici writes a Buffer body straight to the socket, without a copy
 * (src/registry-client/http-transport.ts). The next chunk is gathered while one is in flight, so
 * about three chunks' worth is held at the peak (the one going out, the next one's pieces and
 * their concatenation), and this sets much of the converter's memory: on bench/estargz.ts's image,
 * 4 MiB took peak RSS from about 320 MiB (the registry client's 16 MiB default) to about 230 MiB,
 * for 50 PATCHes per 200 MB (measured when uploads went through the global fetch, which also
 * copied each body; undici saves that copy).
 */
const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;
const GZIP_MAGIC = [0x1f, 0x8b];
const FOREIGN = /nondistributable|foreign/;

/** Non-distributable (foreign) layers are never copied between registries (image-spec layer.md). */
export function isNonDistributable(mediaType: string): boolean {
  return FOREIGN.test(mediaType);
}
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(chunk: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => chunk[i] === b);
}

/** Passes the blob through while hashing it; fails at the end when it is not the descriptor's. */
async function* verified(
  body: AsyncIterable<Uint8Array>,
  desc: Descriptor,
  progress: (n: number) => void,
): AsyncGenerator<Buffer> {
  const digester = new Digester(desc.digest.algorithm);
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    digester.update(buf);
    progress(buf.length);
    yield buf;
  }
  const got = digester.digest().value;
  if (got !== desc.digest.value || digester.size !== desc.size) {
    throw new EstargzError(
      'DIGEST_MISMATCH',
      `layer ${desc.digest.value} arrived as ${got} (${digester.size} bytes, descriptor says ${desc.size})`,
    );
  }
}

/**
 * The layer's tar stream: gunzipped when the blob starts with gzip's magic (whatever its media
 * type claims), refused when it is zstd (Node 20's zlib has no zstd).
 */
async function* decompressed(source: AsyncIterable<Buffer>, desc: Descriptor): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length < 4) {
    const more = await it.next();
    if (more.done) break;
    first = { done: false, value: Buffer.concat([first.value, more.value]) };
  }
  if (first.done) return;
  const head = first.value;
  async function* rest(): AsyncGenerator<Buffer> {
    yield head;
    for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  }
  if (startsWith(head, ZSTD_MAGIC)) {
    await it.return?.();
    throw new EstargzError(
      'UNSUPPORTED_COMPRESSION',
      `layer ${desc.digest.value} is zstd-compressed; Hoist converts gzip or uncompressed layers only (Node 20 has no zstd)`,
    );
  }
  if (!startsWith(head, GZIP_MAGIC)) {
    yield* rest();
    return;
  }
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  pipeline(Readable.from(rest()), gunzip).catch((err: unknown) => gunzip.destroy(err as Error));
  for await (const chunk of gunzip) yield chunk as Buffer;
}

/**
 * Opens the upload for a blob whose source download is already open. If the destination refuses
 * (401/403 for a repository the credentials may not push to), the source body is dropped: left
 * open, its socket keeps the process alive and `hoist convert` never exits.
 */
async function startUpload(
  dst: RepoRef,
  source: Readable,
  signal: AbortSignal | undefined,
): Promise<BlobUpload> {
  try {
    return await BlobUpload.start(dst.client, dst.repo, { signal });
  } catch (err) {
    source.destroy();
    throw err;
  }
}

/** Converts a gzip or tar layer and uploads the eStargz blob to `dst` as it is produced. */
export async function convertAndUpload(
  src: RepoRef,
  dst: RepoRef,
  layer: Descriptor,
  options: ConvertLayerOptions & { signal?: AbortSignal; onProgress?: (p: TransferProgress) => void },
): Promise<ConvertedLayer> {
  const progress: TransferProgress = { readBytes: 0, writtenBytes: 0 };
  const report = () => options.onProgress?.(progress);
  const blob = await src.client.getBlob(src.repo, layer.digest.value, { signal: options.signal });
  const upload = await startUpload(dst, blob.body, options.signal);
  const writer = upload.chunkedWriter(UPLOAD_CHUNK_BYTES);
  const tar = decompressed(
    verified(blob.body, layer, (n) => {
      progress.readBytes += n;
      report();
    }),
    layer,
  );
  let result: ConvertedLayer;
  try {
    result = await convertLayer(
      tar,
      async (chunk) => {
        await writer.write(chunk);
        progress.writtenBytes += chunk.length;
        report();
      },
      options,
    );
    await writer.close();
  } catch (err) {
    blob.body.destroy();
    await writer.close().catch(() => undefined);
    throw err;
  }
  await upload.commit(result.digest);
  return result;
}

/** Copies a blob as it is (a layer already in eStargz, a foreign artifact's blob). */
export async function copyBlob(
  src: RepoRef,
  dst: RepoRef,
  desc: Descriptor,
  signal?: AbortSignal,
): Promise<void> {
  const digest = desc.digest.value;
  if (await blobExists(dst.client, dst.repo, digest, { signal })) return;
  if (src.client.baseUrl === dst.client.baseUrl && src.repo !== dst.repo) {
    if (await mountBlob(dst.client, dst.repo, digest, src.repo, { signal })) return;
  }
  const blob = await src.client.getBlob(src.repo, digest, { signal });
  const upload = await startUpload(dst, blob.body, signal);
  const writer = upload.chunkedWriter(UPLOAD_CHUNK_BYTES);
  for await (const chunk of verified(blob.body, desc, () => undefined)) await writer.write(chunk);
  await writer.close();
  await upload.commit(digest);
}

/** Reads a small blob (a config) whole, verifying its digest. */
export async function readSmallBlob(src: RepoRef, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > 64 * 1024 * 1024) {
    throw new EstargzError('UNSUPPORTED_MEDIA_TYPE', `config ${desc.digest.value} is larger than 64 MiB`);
  }
  const blob = await src.client.getBlob(src.repo, desc.digest.value, { signal });
  const parts: Buffer[] = [];
  for await (const chunk of verified(blob.body, desc, () => undefined)) parts.push(chunk);
  return Buffer.concat(parts);
}
