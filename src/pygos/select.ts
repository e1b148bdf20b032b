/**
 * The product a run works on. `kiln build --product NAME` and
 * `kiln check-update --product NAME` set it before the project loads;
 * KILN_PRODUCT does the same for every command (plan, explain, pkg …). A tree
 * with a single product needs neither.
 */
let chosen: string | undefined;

export function selectProduct(name: string | undefined): void {
  chosen = name;
}

export function selectedProduct(): string | undefined {
  return chosen ?? (process.env.KILN_PRODUCT || undefined);
}
