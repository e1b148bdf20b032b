import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RUNTIME_SPEC_DIR, validateRuntimeConfig } from "./oci-runtime-schema.js";

const example = (kind: "good" | "bad", name: string) =>
  JSON.parse(readFileSync(join(RUNTIME_SPEC_DIR, "test/config", kind, name), "utf8")) as Record<string, unknown>;

describe("validateRuntimeConfig (OCI runtime-spec JSON Schema)", () => {
  it("accepts the runtime-spec's own good examples", () => {
    expect(validateRuntimeConfig(example("good", "spec-example.json"))).toEqual([]);
    expect(validateRuntimeConfig(example("good", "linux-rdma.json"))).toEqual([]);
    expect(validateRuntimeConfig({ ociVersion: "1.0.2" })).toEqual([]);
  });

  it("rejects the runtime-spec's own bad example, naming the path", () => {
    const errors = validateRuntimeConfig(example("bad", "linux-rdma.json"));
    expect(errors).toContain("/linux/resources/rdma/mlx5_1/hcaHandles: must be integer");
  });

  it("reports a missing ociVersion at its pointer", () => {
    const { ociVersion: _, ...config } = example("good", "spec-example.json");
    const errors = validateRuntimeConfig(config);
    expect(errors).toEqual(["/ociVersion: must have required property 'ociVersion'"]);
  });

  it("reports wrong types and values deep in the config", () => {
    const config = example("good", "spec-example.json");
    const process = config.process as Record<string, unknown>;
    const linux = config.linux as { namespaces: { type: string }[] };
    const broken = {
      ...config,
      process: { ...process, args: "sh" },
      linux: { ...linux, namespaces: [...linux.namespaces, { type: "bogus" }] },
    };
    const errors = validateRuntimeConfig(broken);
    expect(errors).toContain("/process/args: must be array");
    expect(errors.some((e) => e.startsWith("/linux/namespaces/7/type: must be equal to one of the allowed values"))).toBe(true);
    expect(validateRuntimeConfig("not an object")).toEqual(["(root): must be object"]);
  });

  it("compiles once and can be called repeatedly", () => {
    const config = example("good", "spec-example.json");
    for (let i = 0; i < 3; i++) expect(validateRuntimeConfig(config)).toEqual([]);
  });
});
