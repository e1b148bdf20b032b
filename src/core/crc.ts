/**
 * Reflected CRC-32 variants. Node 20 has no zlib.crc32 (it arrives in 22) and
 * nothing for CRC-32C; both are a table and a loop.
 */
function table(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? poly ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

function crcWith(t: Uint32Array): (buf: Uint8Array) => number {
  return (buf) => {
    let c = 0xffffffff;
    for (let i = 0; i < buf.length; i++) c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
}

/** CRC-32 (IEEE), as GPT headers use. */
export const crc32 = crcWith(table(0xedb88320));
/** CRC-32C (Castagnoli), as VHDX uses. */
export const crc32c = crcWith(table(0x82f63b78));
