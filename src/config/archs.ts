/** Architectures kiln knows, in EVE's ZARCH spelling. */
export const ARCHS = ["amd64", "arm64", "riscv64"] as const;
export type Arch = (typeof ARCHS)[number];
