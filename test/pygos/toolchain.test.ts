import { execa } from "execa";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { built, jsonLines, kiln, tempDir, writeProject } from "../helpers/kiln.js";

/** The machine's triplet: the fake toolchain wraps the host's gcc, so its output runs here. */
const TARGET = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";

/**
 * TC_KIND=source with a toolchain "built from source" in a blink: tc-binutils
 * installs $TARGET-strip, tc-gcc (which needs tc-binutils) installs a
 * relocatable $TARGET-gcc that calls the host's gcc with a mark and the
 * toolchain's sysroot ($TCDIR/$TARGET, where DEPENDS go), as a Pygos-built gcc
 * has its sysroot built in.
 */
const FILES: Record<string, string> = {
  "product/src.layers": "base\n",
  "layer/base/TOOLCHAIN": `TC_KIND=source\nTARGET="${TARGET}"\n`,
  "layer/base/ROOTFS": "app\n",
  "pkg/tc-binutils/build": `VERSION=1
prepare() { :; }
build() { printf '#!/bin/sh\\nexec strip "$@"\\n' > "$TARGET-strip"; }
deploy() {
\tmkdir -p "$PKGDEPLOYDIR/bin"
\tinstall -m 0755 "$TARGET-strip" "$PKGDEPLOYDIR/bin/"
\tprintf 'bin\\nbin/%s-strip\\n' "$TARGET" > "$PKGDEPLOYDIR/tc-binutils.files"
}
`,
  "pkg/tc-gcc/build": `VERSION=1
DEPENDS="tc-binutils"
prepare() { :; }
build() {
\t# the toolchain package sees the toolchain packages it needs at TCDIR
\tcommand -v "$TARGET-strip" > saw
\tcat > "$TARGET-gcc" <<-EOF
\t#!/bin/sh
\there="\\$(cd "\\$(dirname "\\$0")/.." && pwd)"
\texec gcc -DBUILT_BY='"tc-gcc"' -I"\\$here/$TARGET/include" "\\$@"
\tEOF
}
deploy() {
\tmkdir -p "$PKGDEPLOYDIR/bin" "$PKGDEPLOYDIR/share"
\tinstall -m 0755 "$TARGET-gcc" "$PKGDEPLOYDIR/bin/"
\tcp saw "$PKGDEPLOYDIR/share/tc-gcc.saw"
\tprintf 'bin\\nbin/%s-gcc\\nshare\\nshare/tc-gcc.saw\\n' "$TARGET" > "$PKGDEPLOYDIR/tc-gcc.files"
}
`,
  "pkg/libgreet/build": `VERSION=1
SUBPKG="libgreet-dev"
prepare() { :; }
build() { echo '#define GREETING "hi from libgreet"' > greet.h; }
deploy() {
\tmkdir -p "$PKGDEPLOYDIR/include"
\tcp greet.h "$PKGDEPLOYDIR/include/"
\tprintf 'include\\ninclude/greet.h\\n' > "$PKGDEPLOYDIR/libgreet-dev.files"
}
`,
  "pkg/app/build": `VERSION=1
DEPENDS="libgreet-dev"
prepare() { :; }
build() {
\tprintf '#include <stdio.h>\\n#include <greet.h>\\nint main(void) { puts(GREETING " built by " BUILT_BY); return 0; }\\n' > app.c
\t"$TARGET-gcc" -O2 -o app app.c
\t{ echo "TCDIR=$TCDIR"; echo "PATH1=\${PATH%%:*}"; echo "CC=$(command -v "$TARGET-gcc")"; } > where
}
deploy() {
\tmkdir -p "$PKGDEPLOYDIR/bin" "$PKGDEPLOYDIR/share"
\tcp app "$PKGDEPLOYDIR/bin/"
\tcp where "$PKGDEPLOYDIR/share/app.where"
\tprintf 'bin\\nbin/app\\nshare\\nshare/app.where\\n' > "$PKGDEPLOYDIR/app.files"
}
`,
};

describe("TC_KIND=source", () => {
  it("builds the toolchain packages first, into TCDIR (BUILDROOT/toolchain), and every other package with it", async () => {
    const dir = await writeProject(FILES);
    const cwd = await tempDir("pygos-tc-out");
    const r = await kiln(["-C", dir, "--json", "build", "--product", "src"], { store: await tempDir("pygos-tc-store"), cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(built(r.stdout).filter((t) => t.startsWith("pkg/"))).toEqual(["pkg/app", "pkg/libgreet", "pkg/tc-binutils", "pkg/tc-gcc"]);

    // Order: both toolchain packages are done before any other package starts.
    const events = jsonLines(r.stdout).filter((e) => typeof e.target === "string" && (e.target as string).startsWith("pkg/"));
    const lastTc = Math.max(...events.flatMap((e, i) => (e.type === "done" && (e.target as string).startsWith("pkg/tc-") ? [i] : [])));
    const firstOther = events.findIndex((e) => e.type === "start" && !(e.target as string).startsWith("pkg/tc-"));
    expect(lastTc).toBeGreaterThanOrEqual(0);
    expect(firstOther).toBeGreaterThan(lastTc);

    const root = join(cwd, "src");
    const x = await tempDir("pygos-tc-x");
    await execa("tar", ["-xf", join(root, "rootfs.tar"), "-C", x]);
    // Compiled by TCDIR's gcc (its mark), with the header of a DEPENDS found in the toolchain's sysroot.
    expect((await execa(join(x, "bin/app"))).stdout).toBe("hi from libgreet built by tc-gcc");
    const where = Object.fromEntries((await readFile(join(x, "share/app.where"), "utf8")).trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
    const tcdir = join(root, "toolchain");
    expect(where).toEqual({ TCDIR: tcdir, PATH1: `${tcdir}/bin`, CC: `${tcdir}/bin/${TARGET}-gcc` });

    // The product's toolchain is a real folder: the toolchain packages, no package's DEPENDS.
    for (const t of ["strip", "gcc"]) expect((await stat(join(tcdir, "bin", `${TARGET}-${t}`))).mode & 0o111).toBeTruthy();
    await expect(stat(join(tcdir, TARGET, "include", "greet.h"))).rejects.toThrow();
    // tc-gcc, built before, saw tc-binutils (its DEPENDS) at the same TCDIR.
    expect((await readFile(join(tcdir, "share", "tc-gcc.saw"), "utf8")).trim()).toBe(`${tcdir}/bin/${TARGET}-strip`);
  });
});
