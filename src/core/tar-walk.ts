import { headerEntry, headerSize, isExtension, readExtension, type TarEntry, type TarExtensions, typeflagOf } from "./tar-header.js";

/**
 * Walk a tar stream entry by entry. Hand-written instead of tar-stream: that
 * one makes a stream object per entry and pushes every byte through it, which
 * costs ~1 s of CPU on the Debian kernel's 410 MB data.tar of which kiln keeps
 * 35 files; here an unread body is skipped by counting, without copies.
 * `visit` may read the body (an async iterable of slices of the input); what
 * it leaves is skipped.
 */
export async function walkTarStream(input: AsyncIterable<Buffer>, visit: (e: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  const it = input[Symbol.asyncIterator]();
  let chunk: Buffer = Buffer.alloc(0);
  let at = 0;
  let offset = 0; // bytes of the stream consumed before `chunk[at]`
  let ended = false;

  /** Make at least `n` bytes available at chunk[at…] (fewer only at the end of the stream). */
  const fill = async (n: number): Promise<void> => {
    while (chunk.length - at < n && !ended) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      const next = r.value as Buffer;
      chunk = at < chunk.length ? Buffer.concat([chunk.subarray(at), next]) : next;
      at = 0;
    }
  };
  const take = async (n: number): Promise<Buffer> => {
    await fill(n);
    if (chunk.length - at < n) throw new Error(`unexpected end of the tar stream (${n} bytes wanted at ${offset})`);
    const out = chunk.subarray(at, at + n);
    at += n;
    offset += n;
    return out;
  };
  /** Skip `n` bytes without keeping them. */
  const skip = async (n: number): Promise<void> => {
    while (n > 0) {
      if (at >= chunk.length) {
        if (ended) throw new Error(`unexpected end of the tar stream (skipping at ${offset})`);
        await fill(1);
        continue;
      }
      const k = Math.min(n, chunk.length - at);
      at += k;
      offset += k;
      n -= k;
    }
  };

  try {
    await walkEntries();
  } finally {
    // Read the rest (the record padding after the end blocks) so that a producer such as
    // `xz -dc` can finish writing and exit; a stream with an iterator attached ignores resume().
    if (!ended) while (!(await it.next()).done);
  }

  async function walkEntries(): Promise<void> {
    let ext: TarExtensions = { pax: {} };
    for (;;) {
      await fill(512);
      if (chunk.length - at < 512) return; // a tar without its end blocks: what was there is all there is
      const header = Buffer.from(await take(512)); // a copy, so the (large) chunk it came from can be freed
      if (header.every((b) => b === 0)) return;
      const typeflag = typeflagOf(header);
      const pad = (n: number) => (512 - (n % 512)) % 512;
      if (isExtension(typeflag)) {
        const n = headerSize(header);
        readExtension(typeflag, Buffer.from(await take(n)), ext);
        await skip(pad(n));
        continue;
      }
      const { entry, dataSize } = headerEntry(header, ext, offset);
      ext = { pax: {} };
      let left = dataSize;
      if (entry) {
        const body: AsyncIterable<Buffer> = {
          [Symbol.asyncIterator]: async function* () {
            while (left > 0) {
              if (at >= chunk.length) await fill(1);
              if (at >= chunk.length) throw new Error(`unexpected end of the tar stream in ${entry.name}`);
              const k = Math.min(left, chunk.length - at);
              const piece = chunk.subarray(at, at + k);
              at += k;
              offset += k;
              left -= k;
              yield piece;
            }
          },
        };
        await visit(entry, body);
      }
      await skip(left + pad(dataSize));
    }
  }
}
