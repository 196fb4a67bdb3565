import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import {
  parseServicesCluster,
  parseWarmPool,
  profileLabel,
  warmPoolFromList,
  type OfferedVersions,
  type ParsedPools,
} from "./pool-profiles.js";

const versions: OfferedVersions = {
  releases: [
    { minor: "1.34", version: "v1.34.4" },
    { minor: "1.33", version: "v1.33.13" },
  ],
  defaultMinor: "1.34",
};
/** The profiles, or the problem thrown as an error (for assert.throws). */
const profilesOf = (parsed: ParsedPools) => {
  if (parsed.problem !== undefined) throw new Error(parsed.problem);
  return parsed.profiles;
};
const parse = (text: string) => profilesOf(parseWarmPool(text, versions));
const refused = (text: RegExp) => (e: Error) => text.test(e.message);

describe("warm-pool profiles: --warm-pool", () => {
  it("reads a bare number as that many clusters of the default shape, 0 as no pool", () => {
    assert.deepEqual(parse("2"), [
      {
        label: "1.34/1-mid",
        shape: { kubernetesVersion: "1.34", size: "1-mid", workers: 0, privileged: false },
        count: 2,
      },
    ]);
    assert.deepEqual(parse(" 0 "), []);
  });

  it("reads profiles: version/size, +<n>w, +priv, =count (default 1), versions named by minor", () => {
    const profiles = parse("1.34/1-mid=2, v1.33.13/1-small,1.34/1-small+1w+priv=3,1.34/1-large+privileged+0w=0");
    assert.deepEqual(
      profiles.map((p) => [p.label, p.count]),
      [
        ["1.34/1-mid", 2],
        ["1.33/1-small", 1],
        ["1.34/1-small+1w+priv", 3],
        ["1.34/1-large+priv", 0],
      ],
    );
    assert.deepEqual(profiles[2]!.shape, { kubernetesVersion: "1.34", size: "1-small", workers: 1, privileged: true });
    assert.equal(profiles[1]!.shape.kubernetesVersion, "1.33", "the full version is held as its minor");
  });

  it("refuses what is wrong, naming the profile and the part", () => {
    assert.throws(() => parse(""), refused(/^--warm-pool is empty/));
    assert.throws(
      () => parse("1.34/1-mid,1.35/1-mid"),
      refused(/^--warm-pool profile 2 "1\.35\/1-mid": version "1\.35" is not offered; offered: 1\.34, 1\.33/),
    );
    assert.throws(() => parse("1.34/2-mid"), refused(/profile 1 "1\.34\/2-mid": size "2-mid" is not one of 1-small/));
    assert.throws(() => parse("1.34/1-mid+5w"), refused(/workers "\+5w": at most 4 workers/));
    assert.throws(() => parse("1.34/1-mid+gpu"), refused(/"\+gpu" is not a modifier; use \+<n>w .* or \+priv/));
    assert.throws(() => parse("1.34/1-mid+1w+2w"), refused(/workers \(\+<n>w\) given twice/));
    assert.throws(() => parse("1.34/1-mid=two"), refused(/count must be a whole number >= 0, not "two"/));
    assert.throws(() => parse("1.34/1-mid=-1"), refused(/count must be a whole number/));
    assert.throws(() => parse("1.34/1-mid=1=2"), refused(/one "=<count>" at most/));
    assert.throws(() => parse("1.34=2"), refused(/expected <version>\/<size>/));
    assert.throws(() => parse("1.34/1-mid,,1.33/1-mid"), refused(/profile 2 "" is empty \(a comma too many\?\)/));
    assert.throws(
      () => parse("1.34/1-mid=1,v1.34.4/1-mid=2"),
      refused(/profiles 1 and 2 are the same shape \(1\.34\/1-mid\); give one count/),
    );
  });

  it("spells a shape the way the syntax reads it", () => {
    assert.equal(
      profileLabel({ kubernetesVersion: "1.33", size: "1-small", workers: 2, privileged: true }),
      "1.33/1-small+2w+priv",
    );
    for (const p of parse("1.34/1-mid,1.33/1-small+2w,1.34/1-large+priv")) assert.deepEqual(parse(p.label), [p]);
  });
});

describe("warm-pool profiles: --warm-pool-file", () => {
  // As server/warm-pool-options.ts reads the file: YAML's failsafe schema, every scalar a string.
  const file = (text: string) =>
    profilesOf(warmPoolFromList(YAML.parse(text, { schema: "failsafe" }), "pools.yaml", versions));

  it("reads a YAML list of {version, size, workers, privileged, count} with defaults for what is left out", () => {
    const profiles = file(`
# the pools this host keeps
- version: 1.34
  size: 1-mid
  count: 2
- {version: v1.33.13, size: 1-small, workers: 1, privileged: true}
- {size: 1-large}
`);
    assert.deepEqual(
      profiles.map((p) => [p.label, p.count]),
      [
        ["1.34/1-mid", 2],
        ["1.33/1-small+1w+priv", 1],
        ["1.34/1-large", 1],
      ],
    );
    assert.deepEqual(file(""), [], "an empty file: no pool");
  });

  it("keeps versions as written (1.30 is not the number 1.3) and refuses bad entries naming file, entry and field", () => {
    assert.throws(() => file("- version: 1.30\n"), refused(/^pools\.yaml entry 1: version "1\.30" is not offered/));
    assert.throws(() => file("version: 1.34\n"), refused(/^pools\.yaml must be a YAML list of profiles/));
    assert.throws(() => file("- 1.34/1-mid\n"), refused(/^pools\.yaml entry 1 must be a mapping/));
    assert.throws(
      () => file("- {size: 1-mid, gpus: 1}\n"),
      refused(/entry 1: unknown field "gpus"; fields are version/),
    );
    assert.throws(() => file("- {}\n- {privileged: yes}\n"), refused(/entry 2: privileged must be true or false/));
    assert.throws(() => file("- {workers: 9}\n"), refused(/entry 1: workers: at most 4 workers/));
    assert.throws(() => file("- {count: [1]}\n"), refused(/entry 1: count must be a single value/));
    assert.throws(() => file("- {size: 1-mid}\n- {version: '1.34'}\n"), refused(/profiles 1 and 2 are the same shape/));
  });
});

describe("--services-cluster", () => {
  const shape = (text: string) => {
    const parsed = parseServicesCluster(text, versions);
    if (parsed.problem !== undefined) throw new Error(parsed.problem);
    return parsed.shape;
  };
  it("reads <size>[/<version>][+<n>w] (or the --warm-pool order), never privileged; none is no cluster", () => {
    assert.deepEqual(shape("1-small"), { kubernetesVersion: "1.34", size: "1-small", workers: 0, privileged: false });
    assert.deepEqual(shape("1-mid/1.33"), { kubernetesVersion: "1.33", size: "1-mid", workers: 0, privileged: false });
    assert.deepEqual(shape("v1.33.13/1-large+2w"), {
      kubernetesVersion: "1.33",
      size: "1-large",
      workers: 2,
      privileged: false,
    });
    assert.equal(shape("none"), undefined);
  });
  it("names the part that is wrong", () => {
    assert.throws(() => shape("1-huge"), refused(/--services-cluster "1-huge": size "1-huge" is not one of/));
    assert.throws(() => shape("1-mid/1.99"), refused(/version "1.99" is not offered; offered: 1.34, 1.33/));
    assert.throws(() => shape("1-mid+priv"), refused(/may not be privileged/));
    assert.throws(() => shape("1-mid+9w"), refused(/at most 4 workers/));
    assert.throws(() => shape("1-mid/1.34/x"), refused(/expected <size>\[\/<version>\]/));
    assert.throws(() => shape(""), refused(/expected/));
  });
});
