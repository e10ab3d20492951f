/**
 * Streaming tar reader over a ByteSource: yields each entry with the exact header bytes it came
 * with (extension headers included), so the converter can copy headers losslessly, as the
 * reference's AppendTarLossLess does. The consumer reads the payload from the same source;
 * whatever it leaves unread is skipped before the next entry.
 */
import type { ByteSource } from './byte-source.js';
import { EstargzError } from './errors.js';
import {
  BLOCK_SIZE,
  isZeroBlock,
  paddingFor,
  parseHeaderBlock,
  parsePaxRecords,
  resolveHeader,
  type TarHeader,
} from './tar-header.js';

export interface TarEntry {
  header: TarHeader;
  /** The entry's header blocks as read: pax/GNU extension headers, their data, the ustar block. */
  raw: Buffer;
  /** Offset of `raw` in the tar stream. */
  rawOffset: number;
  /** Offset of the payload in the tar stream. */
  dataOffset: number;
}

/** Extension headers larger than this are refused rather than buffered. */
const MAX_EXTENSION_BYTES = 1024 * 1024;

export async function* readTarEntries(src: ByteSource): AsyncGenerator<TarEntry> {
  for (;;) {
    const rawOffset = src.position;
    const rawParts: Buffer[] = [];
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    let block: Buffer;
    for (;;) {
      block = await src.readExact(BLOCK_SIZE);
      if (block.length === 0 && rawParts.length === 0) {
        return; // a tar with no end-of-archive blocks: accepted, like Go's reader
      }
      if (block.length < BLOCK_SIZE) throw new EstargzError('TAR_INVALID', 'tar archive is truncated');
      if (rawParts.length === 0 && isZeroBlock(block)) {
        await src.drain(); // end of archive; what follows is padding
        return;
      }
      const parsed = parseHeaderBlock(block);
      const flag = parsed.typeflag;
      if (flag !== 'x' && flag !== 'g' && flag !== 'L' && flag !== 'K') break;
      if (parsed.size > MAX_EXTENSION_BYTES) {
        throw new EstargzError('TAR_INVALID', `tar extension header of ${parsed.size} bytes is too large`);
      }
      const dataLength = parsed.size + paddingFor(parsed.size);
      const data = await src.readExact(dataLength);
      if (data.length < dataLength) throw new EstargzError('TAR_INVALID', 'tar archive is truncated');
      rawParts.push(Buffer.from(block), Buffer.from(data));
      const payload = data.subarray(0, parsed.size);
      if (flag === 'x') pax = new Map([...pax, ...parsePaxRecords(payload)]);
      else if (flag === 'L') longName = cText(payload);
      else if (flag === 'K') longLink = cText(payload);
      // 'g' (global pax) is kept in the bytes but, as in Go's reader, not applied to entries.
    }
    rawParts.push(Buffer.from(block));
    const header = resolveHeader(parseHeaderBlock(block), pax, longName, longLink);
    const dataOffset = src.position;
    yield { header, raw: Buffer.concat(rawParts), rawOffset, dataOffset };
    const end = dataOffset + header.size + paddingFor(header.size);
    const toSkip = end - src.position;
    if (toSkip < 0) throw new Error('tar consumer read past the entry');
    if ((await src.skip(toSkip)) < toSkip) throw new EstargzError('TAR_INVALID', 'tar archive is truncated');
  }
}

function cText(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.toString('utf8', 0, nul === -1 ? data.length : nul);
}
