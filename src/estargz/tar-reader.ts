/**
 * Streaming tar reader over a ByteSource: yields each entry with the exact header bytes it came
 * with (extension headers included), so the converter can copy headers losslessly, as the
 * reference's AppendTarLossLess does. The consumer reads the payload from the same source;
 * whatever it leaves unread is skipped before the next entry.
 *
 * Where an archive may end is Go's archive/tar's rule (reader.go), since containerd and the
 * stargz reference read layers with it: a clean EOF at a header boundary, or inside the padding
 * after an entry's data, ends the archive (tryReadFull turns a short padding read into io.EOF);
 * an EOF inside a header or inside an entry's data is an error (io.ErrUnexpectedEOF). umoci 0.4.x
 * writes such unterminated layers (`umoci insert`: no end-of-archive blocks, last padding short).
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
      // No end-of-archive blocks. Go's reader also ends here after extension headers; so do we.
      if (block.length === 0) return;
      if (block.length < BLOCK_SIZE) {
        throw new EstargzError('TAR_INVALID', `tar archive ends inside a header at byte ${src.position}`);
      }
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
      if (data.length < parsed.size) {
        throw new EstargzError('TAR_INVALID', `tar archive ends inside a header at byte ${src.position}`);
      }
      if (data.length < dataLength) return; // EOF in the padding: the end, as for Go's reader
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
    const dataEnd = dataOffset + header.size;
    const end = dataEnd + paddingFor(header.size);
    if (src.position > dataEnd) throw new Error('tar consumer read past the entry');
    const dataLeft = dataEnd - src.position;
    if ((await src.skip(dataLeft)) < dataLeft) {
      throw new EstargzError(
        'TAR_INVALID',
        `tar archive ends inside the payload of "${header.name.slice(0, 80)}"`,
      );
    }
    const padding = end - dataEnd;
    if ((await src.skip(padding)) < padding) return; // EOF in the last padding: the end
  }
}

function cText(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.toString('utf8', 0, nul === -1 ? data.length : nul);
}
