/**
 * The eStargz writer (docs/estargz.md; estargz.go Writer.appendTar and gzip.go): each regular
 * file's payload starts a new gzip member, and so does every further chunk of `chunkSizeBytes`;
 * tar headers ride in the member that is open. After the entries: the TOC as a one-entry tar in
 * its own member, then the footer. The output is one tar when decompressed, so its sha256 is the
 * layer's diff ID, and every TOC offset points at a member whose first bytes are that chunk.
 */
import { createHash, type Hash } from 'node:crypto';
import { ESTARGZ_DEFAULTS, LANDMARK_CONTENTS, TOC_TAR_NAME } from './constants.js';
import { EstargzError } from './errors.js';
import { encodeFooter } from './footer.js';
import { OrderedGzipWriter, type Sink } from './gzip-members.js';
import { BLOCK_SIZE, encodeRegularHeader, paddingFor, type TarHeader } from './tar-header.js';
import { NameCompressor, serializeToc, tocEntryFor, type TocEntry } from './toc.js';

export interface WriterOptions {
  chunkSizeBytes?: number;
  gzipLevel?: number;
  compressConcurrency?: number;
}

export interface WrittenLayer {
  /** sha256 of the blob written. */
  digest: string;
  size: number;
  /** sha256 of the decompressed blob: the config's rootfs.diff_ids entry. */
  diffId: string;
  uncompressedSize: number;
  /** sha256 of the TOC JSON: the `containerd.io/snapshot/stargz/toc.digest` annotation. */
  tocDigest: string;
  tocOffset: number;
  entries: number;
}

/** Reads up to `max` payload bytes; an empty buffer means the payload ended early. */
export type PayloadReader = (max: number) => Promise<Buffer>;

const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

export class EstargzWriter {
  private readonly out: OrderedGzipWriter;
  private readonly chunkSize: number;
  private readonly names = new NameCompressor();
  private readonly entries: TocEntry[] = [];
  private readonly diffHash = createHash('sha256');
  private readonly blobHash = createHash('sha256');
  private uncompressed = 0;
  private member: Buffer[] = [];
  private memberBytes = 0;
  /** TOC entries whose offset is the start of the member being filled. */
  private memberStarts: TocEntry[] = [];
  private finished = false;

  constructor(sink: Sink, options: WriterOptions = {}) {
    this.chunkSize = options.chunkSizeBytes ?? ESTARGZ_DEFAULTS.chunkSizeBytes;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize <= 0) {
      throw new RangeError(`chunk size must be a positive integer, not ${this.chunkSize}`);
    }
    const hashed: Sink = (chunk) => {
      this.blobHash.update(chunk);
      return sink(chunk);
    };
    this.out = new OrderedGzipWriter(
      hashed,
      options.gzipLevel ?? ESTARGZ_DEFAULTS.gzipLevel,
      options.compressConcurrency ?? ESTARGZ_DEFAULTS.compressConcurrency,
    );
  }

  /**
   * Appends one tar entry: `raw` is its header bytes as they should appear (copied losslessly),
   * `read` yields exactly `header.size` payload bytes for a regular file.
   */
  async addEntry(header: TarHeader, raw: Buffer, read: PayloadReader): Promise<void> {
    const entry = tocEntryFor(header, this.names);
    this.append(raw);
    if (header.type !== 'reg') {
      this.entries.push(entry);
      await this.maybeSplitHeaders();
      return;
    }
    const fileHash = createHash('sha256');
    let ent = entry;
    let written = 0;
    // One gzip member per chunk, as Writer.appendTar: ChunkSize is recorded on every chunk but a
    // short last one; ChunkOffset is the chunk's position in the file.
    while (written < header.size) {
      await this.closeMember();
      const remain = header.size - written;
      const chunk = Math.min(remain, this.chunkSize);
      if (remain >= this.chunkSize) ent.chunkSize = this.chunkSize;
      ent.chunkOffset = written;
      this.memberStarts.push(ent);
      const chunkHash = createHash('sha256');
      await this.copyPayload(read, chunk, [chunkHash, fileHash], header.name);
      ent.chunkDigest = `sha256:${chunkHash.digest('hex')}`;
      this.entries.push(ent);
      written += chunk;
      ent = { name: header.name, type: 'chunk' };
    }
    if (header.size === 0) this.entries.push(entry);
    entry.digest = `sha256:${fileHash.digest('hex')}`;
    const pad = paddingFor(header.size);
    if (pad > 0) this.append(ZERO_BLOCK.subarray(0, pad));
    await this.maybeSplitHeaders();
  }

  /** Adds `.prefetch.landmark` or `.no.prefetch.landmark` (one byte, 0x0f), as estargz.Build does. */
  async addLandmark(name: string): Promise<void> {
    const header: TarHeader = {
      name,
      type: 'reg',
      size: LANDMARK_CONTENTS.length,
      mode: 0,
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      mtime: 0,
      linkname: '',
      devmajor: 0,
      devminor: 0,
      xattrs: new Map(),
    };
    let sent = false;
    await this.addEntry(header, encodeRegularHeader(name, LANDMARK_CONTENTS.length), async () => {
      if (sent) return Buffer.alloc(0);
      sent = true;
      return LANDMARK_CONTENTS;
    });
  }

  /** Writes the TOC member and the footer; the blob is complete when this resolves. */
  async finish(): Promise<WrittenLayer> {
    if (this.finished) throw new Error('EstargzWriter.finish called twice');
    this.finished = true;
    await this.closeMember();
    await this.out.drain(); // every member's offset is known once it is written
    const tocOffset = this.out.position;
    const tocJson = serializeToc({ version: 1, entries: this.entries });
    // The TOC is a tar of one file, closed with the two zero blocks that end the whole archive.
    this.append(encodeRegularHeader(TOC_TAR_NAME, tocJson.length));
    this.append(tocJson);
    this.append(Buffer.alloc(paddingFor(tocJson.length) + 2 * BLOCK_SIZE));
    await this.closeMember();
    await this.out.writeRaw(encodeFooter(tocOffset));
    return {
      digest: `sha256:${this.blobHash.digest('hex')}`,
      size: this.out.position,
      diffId: `sha256:${this.diffHash.digest('hex')}`,
      uncompressedSize: this.uncompressed,
      tocDigest: `sha256:${createHash('sha256').update(tocJson).digest('hex')}`,
      tocOffset,
      entries: this.entries.length,
    };
  }

  private append(data: Buffer): void {
    if (data.length === 0) return;
    this.member.push(data);
    this.memberBytes += data.length;
    this.diffHash.update(data);
    this.uncompressed += data.length;
  }

  private async copyPayload(read: PayloadReader, n: number, hashes: Hash[], name: string): Promise<void> {
    let left = n;
    while (left > 0) {
      const part = await read(left);
      if (part.length === 0) {
        throw new EstargzError(
          'TAR_INVALID',
          `tar archive ends inside the payload of "${name.slice(0, 80)}"`,
        );
      }
      for (const h of hashes) h.update(part);
      this.append(part);
      left -= part.length;
    }
  }

  /**
   * A long run of headers (thousands of empty files) is cut into several members so that memory
   * stays bounded; a cut between headers moves no TOC offset, since offsets mark payload starts.
   */
  private async maybeSplitHeaders(): Promise<void> {
    if (this.memberBytes >= this.chunkSize) await this.closeMember();
  }

  private async closeMember(): Promise<void> {
    if (this.memberBytes === 0) return;
    const data = this.member.length === 1 ? this.member[0]! : Buffer.concat(this.member, this.memberBytes);
    const starts = this.memberStarts;
    this.member = [];
    this.memberBytes = 0;
    this.memberStarts = [];
    await this.out.submit(
      data,
      starts.length === 0
        ? undefined
        : (offset) => {
            for (const e of starts) e.offset = offset;
          },
    );
  }
}
