import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // e2e tests spawn the real CLI; two workers match the 2-core CI machine.
    maxWorkers: 2,
  },
});
