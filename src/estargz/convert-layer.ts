/**
 * Converts one layer's tar stream to eStargz. With no prioritized files the layer streams
 * straight through (bounded memory, one pass). With prioritized files the entries must be
 * reordered, so the tar is first spooled to a temporary file (disk, not memory) and then
 * written in the new order, as the reference's estargz.Build does with its temp files.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { ByteSource } from './byte-source.js';
import { NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME } from './constants.js';
import { orderEntries, cleanEntryName } from './prioritize.js';
import { readTarEntries } from './tar-reader.js';
import type { TarHeader } from './tar-header.js';
import { EstargzWriter, type WriterOptions, type WrittenLayer } from './writer.js';
import type { Sink } from './gzip-members.js';

export interface ConvertLayerOptions extends WriterOptions {
  /** Paths to put first, followed by `.prefetch.landmark`; none gives `.no.prefetch.landmark`. */
  prioritizedFiles?: readonly string[];
  /** Where to spool a layer that must be reordered; default the OS temp dir. */
  tmpDir?: string;
}

export interface ConvertedLayer extends WrittenLayer {
  /** Prioritized paths this layer does not contain. */
  missedPrioritized: string[];
}

/** An old TOC is dropped, as the reference's appendTar does (a layer converted twice). */
function isOldToc(name: string): boolean {
  return cleanEntryName(name) === TOC_TAR_NAME;
}

/** Existing landmarks are dropped and re-created, as the reference's importTar does. */
function isLandmark(name: string): boolean {
  const clean = cleanEntryName(name);
  return clean === PREFETCH_LANDMARK || clean === NO_PREFETCH_LANDMARK;
}

/** `tar` is the decompressed layer; the eStargz blob goes to `sink` as it is produced. */
export async function convertLayer(
  tar: AsyncIterable<Uint8Array>,
  sink: Sink,
  options: ConvertLayerOptions = {},
): Promise<ConvertedLayer> {
  const prioritized = options.prioritizedFiles ?? [];
  if (prioritized.length > 0) return convertReordered(tar, sink, options, prioritized);
  const writer = new EstargzWriter(sink, options);
  const src = new ByteSource(tar);
  try {
    await writer.addLandmark(NO_PREFETCH_LANDMARK);
    for await (const { header, raw } of readTarEntries(src)) {
      if (isOldToc(header.name) || isLandmark(header.name)) continue;
      await writer.addEntry(header, raw, (max) => src.read(max));
    }
    return { ...(await writer.finish()), missedPrioritized: [] };
  } finally {
    await src.close();
  }
}

const READ_BYTES = 1 << 20;

interface SpooledEntry {
  name: string;
  type: string;
  linkname: string;
  header: TarHeader;
  rawOffset: number;
  rawLength: number;
  dataOffset: number;
}

async function convertReordered(
  tar: AsyncIterable<Uint8Array>,
  sink: Sink,
  options: ConvertLayerOptions,
  prioritized: readonly string[],
): Promise<ConvertedLayer> {
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'hoist-estargz-'));
  try {
    const spoolPath = join(dir, 'layer.tar');
    const spool = createWriteStream(spoolPath);
    const spoolDone = finished(spool);
    spoolDone.catch(() => undefined);
    async function* tee(): AsyncGenerator<Uint8Array> {
      for await (const chunk of tar) {
        if (!spool.write(chunk)) await new Promise<void>((r) => spool.once('drain', r));
        yield chunk;
      }
    }
    const entries: SpooledEntry[] = [];
    const src = new ByteSource(tee());
    try {
      for await (const e of readTarEntries(src)) {
        if (isOldToc(e.header.name)) continue;
        entries.push({
          name: e.header.name,
          type: e.header.type,
          linkname: e.header.linkname,
          header: e.header,
          rawOffset: e.rawOffset,
          rawLength: e.raw.length,
          dataOffset: e.dataOffset,
        });
      }
    } finally {
      await src.close();
    }
    spool.end();
    await spoolDone;

    const { ordered, landmark, missed } = orderEntries(entries, prioritized);
    const writer = new EstargzWriter(sink, options);
    const file = await open(spoolPath, 'r');
    try {
      for (const e of ordered) {
        if (e === 'landmark') {
          await writer.addLandmark(landmark);
          continue;
        }
        const raw = Buffer.alloc(e.rawLength);
        await file.read(raw, 0, raw.length, e.rawOffset);
        let position = e.dataOffset;
        await writer.addEntry(e.header, raw, async (max) => {
          // A fresh buffer per read: the writer keeps the bytes until their member is compressed.
          const want = Math.min(max, READ_BYTES);
          const out = Buffer.allocUnsafe(want);
          const { bytesRead } = await file.read(out, 0, want, position);
          position += bytesRead;
          return out.subarray(0, bytesRead);
        });
      }
    } finally {
      await file.close();
    }
    return { ...(await writer.finish()), missedPrioritized: missed };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
