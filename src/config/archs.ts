/** Architectures kiln knows, in EVE's ZARCH spelling. */
export const ARCHS = ["amd64", "arm64", "riscv64"] as const;
export type Arch = (typeof ARCHS)[number];

/** The kernel's names EVE's Makefile also takes for ZARCH (`ZARCH=[x86_64|aarch64]`), as kiln's. */
const ALIASES: Record<string, Arch> = { x86_64: "amd64", aarch64: "arm64" };

/** An architecture as given (--arch, ZARCH=) in kiln's spelling: x86_64 is amd64, aarch64 arm64. */
export function archName(given: string): string {
  return ALIASES[given] ?? given;
}

/** Root file system formats (EVE's ROOTFS_FORMAT). */
export const ROOTFS_FORMATS = ["squashfs", "ext4", "erofs"] as const;
