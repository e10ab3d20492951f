/**
 * Tar headers (POSIX.1-2001 pax and ustar, with the GNU long-name extensions), parsed the way
 * Go's archive/tar does, since the eStargz TOC records what Go's reader sees
 * (estargz.go appendTar). Pure code: blocks in, fields out.
 */
import { EstargzError } from './errors.js';

export const BLOCK_SIZE = 512;

export type TarEntryType = 'reg' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One member of the archive, after its pax / GNU extension headers have been applied. */
export interface TarHeader {
  name: string;
  type: TarEntryType;
  /** Payload bytes that follow the header (0 except for regular files). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch (pax mtime may carry a fraction). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from pax `SCHILY.xattr.*` records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

/** What a header block declares, before extension headers are applied. */
export interface RawHeaderBlock {
  typeflag: string;
  name: string;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

export function paddingFor(size: number): number {
  const rem = size % BLOCK_SIZE;
  return rem === 0 ? 0 : BLOCK_SIZE - rem;
}

function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

/** Numeric fields: octal ASCII, or base-256 when the top bit of the first byte is set (GNU). */
function numeric(block: Buffer, start: number, length: number, what: string): number {
  const first = block[start] ?? 0;
  if (first & 0x80) {
    let value = first & 0x7f;
    if (first & 0x40) throw new EstargzError('TAR_INVALID', `tar header ${what} is negative`);
    for (let i = start + 1; i < start + length; i++) value = value * 256 + (block[i] ?? 0);
    if (!Number.isSafeInteger(value))
      throw new EstargzError('TAR_INVALID', `tar header ${what} is too large`);
    return value;
  }
  const text = block
    .toString('latin1', start, start + length)
    .replace(/\0.*$/s, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text))
    throw new EstargzError('TAR_INVALID', `tar header ${what} "${text}" is not octal`);
  return parseInt(text, 8);
}

/** Parses one 512-byte header block, checking its checksum. */
export function parseHeaderBlock(block: Buffer): RawHeaderBlock {
  if (block.length !== BLOCK_SIZE) throw new EstargzError('TAR_INVALID', 'tar archive ends inside a header');
  const stored = numeric(block, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new EstargzError(
      'TAR_INVALID',
      'tar header checksum mismatch: the layer is not a valid tar archive',
    );
  }
  const magic = block.toString('latin1', 257, 263);
  let name = cString(block, 0, 100);
  // ustar ("ustar\0") splits long names into prefix/name; GNU ("ustar ") uses the space otherwise.
  if (magic === 'ustar\0') {
    const prefix = cString(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    typeflag: String.fromCharCode(block[156] ?? 0),
    name,
    linkname: cString(block, 157, 100),
    size: numeric(block, 124, 12, 'size'),
    mode: numeric(block, 100, 8, 'mode'),
    uid: numeric(block, 108, 8, 'uid'),
    gid: numeric(block, 116, 8, 'gid'),
    mtime: numeric(block, 136, 12, 'mtime'),
    uname: cString(block, 265, 32),
    gname: cString(block, 297, 32),
    devmajor: magic.startsWith('ustar') ? numeric(block, 329, 8, 'devmajor') : 0,
    devminor: magic.startsWith('ustar') ? numeric(block, 337, 8, 'devminor') : 0,
  };
}

/** Parses pax extended header records, `"%d %s=%s\n"` (POSIX.1-2001 pax "extended header"). */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad with NULs
    const space = data.indexOf(0x20, pos);
    const length = space === -1 ? NaN : Number(data.toString('latin1', pos, space));
    if (!Number.isSafeInteger(length) || length <= 0 || pos + length > data.length) {
      throw new EstargzError('TAR_INVALID', 'malformed pax extended header record');
    }
    const record = data.subarray(space + 1, pos + length - 1); // drop the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new EstargzError('TAR_INVALID', 'pax record without "="');
    out.set(record.toString('utf8', 0, eq), record.subarray(eq + 1));
    pos += length;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'reg',
  '\0': 'reg',
  '7': 'reg', // contiguous file: a regular file to every reader
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

export function entryType(typeflag: string, name: string): TarEntryType {
  const type = TYPES[typeflag];
  // Go's reader also maps a pre-POSIX regular file named "x/" to a directory.
  if (type === 'reg' && typeflag === '\0' && name.endsWith('/')) return 'dir';
  if (type === undefined) {
    throw new EstargzError(
      'TAR_INVALID',
      `tar entry "${name.slice(0, 80)}" has type "${typeflag.replace('\0', '\\0')}", which eStargz cannot hold`,
    );
  }
  return type;
}

/** Applies pax records (and GNU long names) over a header block, as Go's tar.Reader does. */
export function resolveHeader(
  block: RawHeaderBlock,
  pax: Map<string, Buffer>,
  gnuLongName: string | undefined,
  gnuLongLink: string | undefined,
): TarHeader {
  const text = (key: string) => pax.get(key)?.toString('utf8');
  const num = (key: string, fallback: number) => {
    const v = text(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n))
      throw new EstargzError('TAR_INVALID', `pax record ${key}="${v}" is not a number`);
    return n;
  };
  const name = text('path') ?? gnuLongName ?? block.name;
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of pax) {
    if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), value);
  }
  const type = entryType(block.typeflag, name);
  const size = num('size', block.size);
  if (!Number.isSafeInteger(size) || size < 0)
    throw new EstargzError('TAR_INVALID', `tar entry size ${size}`);
  return {
    name,
    type,
    size,
    mode: block.mode,
    uid: num('uid', block.uid),
    gid: num('gid', block.gid),
    uname: text('uname') ?? block.uname,
    gname: text('gname') ?? block.gname,
    mtime: num('mtime', block.mtime),
    linkname: text('linkpath') ?? gnuLongLink ?? block.linkname,
    devmajor: block.devmajor,
    devminor: block.devminor,
    xattrs,
  };
}

function writeOctal(block: Buffer, value: number, start: number, length: number): void {
  block.write(value.toString(8).padStart(length - 1, '0') + '\0', start, length, 'latin1');
}

/**
 * A ustar header for a plain regular file Hoist writes itself (landmarks and the TOC), as Go's
 * tar.Writer encodes `tar.Header{Typeflag: TypeReg, Name, Size}`.
 */
export function encodeRegularHeader(name: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 0, 100, 8); // mode
  writeOctal(block, 0, 108, 8); // uid
  writeOctal(block, 0, 116, 8); // gid
  writeOctal(block, size, 124, 12);
  writeOctal(block, 0, 136, 12); // mtime
  block.write('0', 156, 1, 'latin1');
  block.write('ustar\0' + '00', 257, 8, 'latin1');
  writeOctal(block, 0, 329, 8);
  writeOctal(block, 0, 337, 8);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return block;
}
