/**
 * Checks that a blob is valid eStargz (docs/estargz.md): the footer parses, the TOC is a tar
 * entry `stargz.index.json` whose JSON digest is the layer's annotation, every regular file's
 * payload and every chunk has a digest, each TOC offset is the start of a gzip member whose
 * first decompressed bytes are that chunk, and the chunk digests match. The whole blob is read
 * once, as a stream; it is cut at the TOC offsets and each piece is decompressed on its own,
 * which is exactly what the snapshotter does when it fetches a chunk by range.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { FOOTER_SIZE, TOC_TAR_NAME } from './constants.js';
import { EstargzError } from './errors.js';
import { parseFooter } from './footer.js';
import { BLOCK_SIZE, parseHeaderBlock } from './tar-header.js';
import { parseToc, type Toc, type TocEntry } from './toc.js';

const gunzipAsync = promisify(gunzip) as (data: Buffer) => Promise<Buffer>;

/** A piece between two TOC offsets is held whole while it is decompressed; refuse absurd ones. */
const MAX_PIECE_BYTES = 512 * 1024 * 1024;

export interface BlobAccess {
  size: number;
  /** Bytes [start, end) of the blob. */
  readRange(start: number, end: number): Promise<Buffer>;
  /** The whole blob, from the start. */
  stream(): AsyncIterable<Uint8Array>;
}

export interface BlobCheck {
  tocDigest: string;
  tocOffset: number;
  entries: number;
  chunksVerified: number;
  /** sha256 of the decompressed blob, to compare with the config's diff ID. */
  diffId: string;
  uncompressedSize: number;
}

function invalid(message: string): EstargzError {
  return new EstargzError('ESTARGZ_INVALID', message);
}

/** Reads the TOC JSON out of the bytes between the TOC offset and the footer. */
export async function readToc(tocMember: Buffer): Promise<{ toc: Toc; json: Buffer }> {
  let tar: Buffer;
  try {
    tar = await gunzipAsync(tocMember);
  } catch (cause) {
    throw new EstargzError('ESTARGZ_INVALID', "TOC: the bytes at the footer's offset are not gzip", {
      cause,
    });
  }
  if (tar.length < BLOCK_SIZE) throw invalid('TOC: no tar header in the TOC member');
  const header = parseHeaderBlock(tar.subarray(0, BLOCK_SIZE));
  if (header.name !== TOC_TAR_NAME)
    throw invalid(`TOC: tar entry is "${header.name}", not "${TOC_TAR_NAME}"`);
  const json = tar.subarray(BLOCK_SIZE, BLOCK_SIZE + header.size);
  if (json.length !== header.size) throw invalid('TOC: JSON is truncated');
  try {
    return { toc: parseToc(json), json };
  } catch (cause) {
    throw new EstargzError('ESTARGZ_INVALID', `TOC: ${(cause as Error).message}`, { cause });
  }
}

interface Chunk {
  offset: number;
  size: number;
  digest: string;
  name: string;
}

/** The chunks the TOC promises, by offset; checks the rules of the reference's Verifiers(). */
export function chunksOf(toc: Toc, tocOffset: number): Chunk[] {
  const chunks: Chunk[] = [];
  const seen = new Set<number>();
  let last: TocEntry | undefined;
  for (const e of toc.entries) {
    if (e.type === 'reg') last = e;
    if (e.type !== 'reg' && e.type !== 'chunk') continue;
    if (e.type === 'reg' && !e.size) continue;
    const name = e.type === 'chunk' ? (last?.name ?? e.name) : e.name;
    const offset = e.offset ?? 0;
    if (seen.has(offset)) throw invalid(`TOC: offset ${offset} appears twice (${name})`);
    seen.add(offset);
    if (offset <= 0 || offset >= tocOffset)
      throw invalid(`TOC: ${name} has offset ${offset}, outside the payload`);
    if (!e.chunkDigest) throw invalid(`TOC: ${name} has no chunkDigest`);
    const fileSize = e.type === 'reg' ? (e.size ?? 0) : (last?.size ?? 0);
    const size = e.chunkSize || fileSize - (e.chunkOffset ?? 0);
    if (size <= 0) throw invalid(`TOC: ${name} has a chunk of ${size} bytes`);
    chunks.push({ offset, size, digest: e.chunkDigest, name });
  }
  return chunks.sort((a, b) => a.offset - b.offset);
}

export async function checkBlob(blob: BlobAccess, expectedTocDigest: string | undefined): Promise<BlobCheck> {
  if (blob.size < FOOTER_SIZE) throw invalid(`blob is ${blob.size} bytes, smaller than the footer`);
  const tocOffset = parseFooter(await blob.readRange(blob.size - FOOTER_SIZE, blob.size));
  if (tocOffset >= blob.size - FOOTER_SIZE) throw invalid(`footer: TOC offset ${tocOffset} is past the end`);
  const { toc, json } = await readToc(await blob.readRange(tocOffset, blob.size - FOOTER_SIZE));
  const tocDigest = `sha256:${createHash('sha256').update(json).digest('hex')}`;
  if (expectedTocDigest !== undefined && tocDigest !== expectedTocDigest) {
    throw invalid(`TOC digest is ${tocDigest}, the layer's annotation says ${expectedTocDigest}`);
  }
  const chunks = chunksOf(toc, tocOffset);

  // Cut the blob at every chunk offset and at the TOC; decompress each piece on its own.
  const cuts = [...chunks.map((c) => c.offset), tocOffset, blob.size];
  const diff = createHash('sha256');
  let uncompressedSize = 0;
  let pieceStart = 0;
  let piece: Buffer[] = [];
  let pieceBytes = 0;
  let cutIndex = 0;
  let verified = 0;
  const finishPiece = async () => {
    const data = Buffer.concat(piece, pieceBytes);
    let out: Buffer;
    try {
      out = await gunzipAsync(data);
    } catch (cause) {
      throw new EstargzError(
        'ESTARGZ_INVALID',
        `bytes ${pieceStart}-${pieceStart + pieceBytes} are not whole gzip members (a TOC offset is not a member start)`,
        { cause },
      );
    }
    diff.update(out);
    uncompressedSize += out.length;
    const chunk = chunks[cutIndex - 1];
    if (chunk !== undefined && pieceStart === chunk.offset) {
      if (out.length < chunk.size)
        throw invalid(`${chunk.name}: chunk at ${chunk.offset} holds ${out.length} bytes, not ${chunk.size}`);
      const got = `sha256:${createHash('sha256').update(out.subarray(0, chunk.size)).digest('hex')}`;
      if (got !== chunk.digest)
        throw invalid(
          `${chunk.name}: chunk at ${chunk.offset} has digest ${got}, the TOC says ${chunk.digest}`,
        );
      verified++;
    }
    piece = [];
    pieceBytes = 0;
  };
  let position = 0;
  for await (const raw of blob.stream()) {
    let buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    while (buf.length > 0) {
      const cut = cuts[cutIndex] ?? blob.size;
      const take = Math.min(buf.length, cut - position);
      if (take > 0) {
        piece.push(buf.subarray(0, take));
        pieceBytes += take;
        position += take;
        buf = buf.subarray(take);
        if (pieceBytes > MAX_PIECE_BYTES)
          throw invalid(`a gzip piece at ${pieceStart} is larger than ${MAX_PIECE_BYTES} bytes`);
      }
      if (position === cut && cutIndex < cuts.length) {
        if (pieceBytes > 0) await finishPiece();
        pieceStart = position;
        cutIndex++;
      }
    }
  }
  if (position !== blob.size) throw invalid(`blob has ${position} bytes, the descriptor says ${blob.size}`);
  return {
    tocDigest,
    tocOffset,
    entries: toc.entries.length,
    chunksVerified: verified,
    diffId: `sha256:${diff.digest('hex')}`,
    uncompressedSize,
  };
}
