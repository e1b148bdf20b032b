/** Read a recipe mode: "0644" or 644 (YAML 1.2 reads 0644 as the decimal 644) both mean octal 644. */
export function parseMode(m: string | number): number {
  const digits = typeof m === "number" ? String(m) : m;
  if (!/^[0-7]{1,4}$/.test(digits.replace(/^0+(?=.)/, ""))) throw new Error(`not an octal mode: ${m}`);
  return parseInt(digits, 8);
}
