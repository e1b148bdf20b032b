/** Architectures kiln knows, in EVE's ZARCH spelling. */
export const ARCHS = ["amd64", "arm64", "riscv64"] as const;
export type Arch = (typeof ARCHS)[number];

/** Root file system formats (EVE's ROOTFS_FORMAT). */
export const ROOTFS_FORMATS = ["squashfs", "ext4", "erofs"] as const;
