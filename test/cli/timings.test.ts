import { describe, expect, it } from "vitest";
import { EventBus } from "../../src/core/events.js";
import { renderTimings, Timings } from "../../src/report/timings.js";

describe("--timings", () => {
  it("lists the phases, the stages that ran with their parts (a written part with its size and speed), and what the cache saved", () => {
    const bus = new EventBus();
    const t = new Timings(bus);
    t.mark("load project");
    bus.emit({ type: "done", target: "pkg/a", key: "k1", cached: true, ms: 3 });
    bus.emit({ type: "done", target: "rootfs/amd64/kvm", key: "k2", cached: false, ms: 480, parts: [{ name: "layers", ms: 40 }, { name: "tar", ms: 400, bytes: 418e6 }] });
    bus.emit({ type: "done", target: "rootfs.img/amd64/kvm", key: "k3", cached: false, ms: 2500 });
    const report = t.finish();
    expect(report.stages.find((s) => s.target === "rootfs/amd64/kvm")?.parts).toEqual([{ name: "layers", ms: 40 }, { name: "tar", ms: 400, bytes: 418e6 }]);
    const lines = renderTimings(report).split("\n").map((l) => l.trimEnd());
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    // slowest stage first; a stage's parts right under it, indented further
    expect(at(/^ {2}rootfs\.img\/amd64\/kvm\s+built\s+2\.5s$/)).toBeLessThan(at(/^ {2}rootfs\/amd64\/kvm\s+built/));
    expect(at(/^ {4}layers\s+40ms$/)).toBe(at(/^ {2}rootfs\/amd64\/kvm\s+built/) + 1);
    expect(lines[at(/^ {4}layers/) + 1]).toMatch(/^ {4}tar \(418 MB, 1\.0 GB\/s\)\s+400ms$/);
    expect(lines.some((l) => /^ {2}1 stage reused by key\s+cached\s+3ms$/.test(l))).toBe(true);
  });
});
