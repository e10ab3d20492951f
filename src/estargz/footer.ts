/**
 * The 51-byte eStargz footer (docs/estargz.md "Footer"; estargz/types.go FooterSize): an empty
 * gzip member, stored (no compression), whose FEXTRA field holds one subfield with IDs 'S','G'
 * and the 22 bytes `%016xSTARGZ`, the TOC member's offset in hex.
 */
import { FOOTER_SIZE } from './constants.js';
import { EstargzError } from './errors.js';

const MAGIC = 'STARGZ';

export function encodeFooter(tocOffset: number): Buffer {
  const out = Buffer.alloc(FOOTER_SIZE);
  // gzip header (RFC 1952 §2.3): ID1 ID2 CM=8 FLG=FEXTRA MTIME=0 XFL=0 OS=255, as Go writes it.
  out.set([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0x00, 0xff], 0);
  out.writeUInt16LE(26, 10); // XLEN: 4-byte subfield header + 22 bytes
  out.write('SG', 12, 'latin1');
  out.writeUInt16LE(22, 14);
  out.write(tocOffset.toString(16).padStart(16, '0') + MAGIC, 16, 'latin1');
  // Final stored deflate block of length 0 (RFC 1951 §3.2.4), then CRC32=0 and ISIZE=0.
  out.set([0x01, 0x00, 0x00, 0xff, 0xff], 38);
  return out;
}

/** Reads the TOC offset from a footer; throws ESTARGZ_INVALID naming what is wrong. */
export function parseFooter(footer: Uint8Array): number {
  const b = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  const bad = (why: string) => new EstargzError('ESTARGZ_INVALID', `footer: ${why}`);
  if (b.length !== FOOTER_SIZE) throw bad(`${b.length} bytes, not ${FOOTER_SIZE}`);
  if (b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 0x08) throw bad('not a gzip member');
  if (((b[3] ?? 0) & 0x04) === 0) throw bad('no gzip Extra field (not eStargz)');
  if (b.readUInt16LE(10) !== 26) throw bad(`Extra field is ${b.readUInt16LE(10)} bytes, not 26`);
  if (b.toString('latin1', 12, 14) !== 'SG') throw bad('Extra subfield IDs are not "SG"');
  if (b.readUInt16LE(14) !== 22) throw bad('Extra subfield length is not 22');
  if (b.toString('latin1', 32, 38) !== MAGIC) throw bad('no STARGZ magic');
  const hex = b.toString('latin1', 16, 32);
  if (!/^[0-9a-f]{16}$/i.test(hex)) throw bad(`TOC offset "${hex}" is not hex`);
  const offset = parseInt(hex, 16);
  if (!Number.isSafeInteger(offset)) throw bad('TOC offset is too large');
  return offset;
}
