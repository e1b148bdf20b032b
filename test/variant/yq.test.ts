import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { KilnError } from "../../src/core/errors.js";
import { applyYq, evaluateYq, parseYq } from "../../src/variant/yq/index.js";

const SRC = { file: "images/modifiers/test.yq" };

/**
 * Runs an expression the way the yq docs show it (`yq EXPR sample.yml`): the input is YAML text
 * (or null for `--null-input`) and the result is every value yq would print.
 */
function yq(input: string | null, expr: string, env: Record<string, string> = {}): unknown[] {
  return evaluateYq(input === null ? null : parse(input), expr, SRC, { env });
}

const Y = (text: string): unknown => parse(text);

function kilnError(fn: () => unknown): KilnError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error("expected a KilnError");
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object") {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

// Test vectors in the describe blocks below marked "yq docs" are the input/expression/output
// examples of mikefarah/yq v4's operator documentation (pkg/yqlib/doc/operators/<page>.md,
// published at https://mikefarah.gitbook.io/yq/operators/<page>).

describe("yq docs: traverse-read", () => {
  it("navigates maps, splats, special characters and dynamic keys", () => {
    expect(yq("a:\n  b: apple\n", ".a")).toEqual([{ b: "apple" }]);
    expect(yq("- b: apple\n- c: banana\n", ".[]")).toEqual([{ b: "apple" }, { c: "banana" }]);
    expect(yq("cat\n", ".[]")).toEqual([]); // Optional Splat
    expect(yq('"{}": frog\n', '.["{}"]')).toEqual(["frog"]);
    expect(yq('a:\n  "key.withdots":\n    "another.key": apple\n', '.a["key.withdots"]["another.key"]')).toEqual(["apple"]);
    expect(yq('"red rabbit": frog\n', '.["red rabbit"]')).toEqual(["frog"]);
    expect(yq("b: apple\napple: crispy yum\nbanana: soft yum\n", ".[.b]")).toEqual(["crispy yum"]);
  });

  it("children that don't exist are null; optional identifiers; wildcards; indices", () => {
    expect(yq("c: banana\n", ".a.b")).toEqual([null]);
    expect(yq("- 1\n- 2\n- 3\n", ".a?")).toEqual([]);
    expect(yq("a:\n  cat: apple\n  mad: things\n", '.a."*a*"')).toEqual(["apple", "things"]);
    expect(yq("- 1\n- 2\n- 3\n", ".[0]")).toEqual([1]);
    expect(yq("[[], [cat]]\n", ".[1][0]")).toEqual(["cat"]);
    expect(yq("2: cat\n", ".[2]")).toEqual(["cat"]);
    expect(yq("a: b\n", ".[0]")).toEqual([null]);
    expect(yq("a:\n  - a\n  - b\n  - c\n", ".a[0, 2]")).toEqual(["a", "c"]);
  });
});

describe("yq docs: slice-array", () => {
  const animals = "- cat\n- dog\n- frog\n- cow\n";
  it("slices with both, one or negative bounds", () => {
    expect(yq(animals, ".[1:3]")).toEqual([["dog", "frog"]]);
    expect(yq(animals, ".[:2]")).toEqual([["cat", "dog"]]);
    expect(yq(animals, ".[2:]")).toEqual([["frog", "cow"]]);
    expect(yq(animals, ".[1:-1]")).toEqual([["dog", "frog"]]);
  });
  it("inserts into the middle of an array using an expression to find the index", () => {
    expect(yq(animals, '(.[] | select(. == "dog") | key + 1) as $pos | .[0:($pos)] + ["rabbit"] + .[$pos:]')).toEqual([
      ["cat", "dog", "rabbit", "frog", "cow"],
    ]);
  });
});

describe("yq docs: collect-into-array, create-collect-into-object, union, pipe", () => {
  it("collects into arrays", () => {
    expect(yq(null, "[]")).toEqual([[]]);
    expect(yq(null, '["cat"]')).toEqual([["cat"]]);
    expect(yq("a: cat\nb: dog\n", "[.a, .b]")).toEqual([["cat", "dog"]]);
  });
  it("creates objects", () => {
    expect(yq(null, "{}")).toEqual([{}]);
    expect(yq("name: Mike\n", '{"wrap": .}')).toEqual([{ wrap: { name: "Mike" } }]);
    expect(yq("name: Mike\npets:\n  - cat\n  - dog\n", "{.name: .pets.[]}")).toEqual([{ Mike: "cat" }, { Mike: "dog" }]);
    expect(yq(null, '{"wrap": "frog"}')).toEqual([{ wrap: "frog" }]);
  });
  it("unions and pipes", () => {
    expect(yq(null, '1, true, "cat"')).toEqual([1, true, "cat"]);
    expect(yq("a: fieldA\nb: fieldB\nc: fieldC\n", ".a, .b")).toEqual(["fieldA", "fieldB"]);
    expect(yq("a:\n  b: cat\n", ".a | .b")).toEqual(["cat"]);
    expect(yq("a: cow\nb: sheep\nc: same\n", '.a = "cat" | .b = "dog"')).toEqual([{ a: "cat", b: "dog", c: "same" }]);
  });
});

describe("yq docs: assign-update", () => {
  it("creates a yaml file from nothing", () => {
    expect(yq(null, '.a.b = "cat" | .x = "frog"')).toEqual([{ a: { b: "cat" }, x: "frog" }]);
  });
  it("updates relative to the node (|=) or to the root (=)", () => {
    expect(yq("a:\n  b:\n    g: foof\n", ".a |= .b")).toEqual([{ a: { g: "foof" } }]);
    expect(yq("- 1\n- 2\n- 3\n", ".[] |= . * 2")).toEqual([[2, 4, 6]]);
    expect(yq("a:\n  b: child\nb: sibling\n", ".a = .b")).toEqual([{ a: "sibling", b: "sibling" }]);
    expect(yq("a: fieldA\nb: fieldB\nc: fieldC\n", '(.a, .c) = "potato"')).toEqual([{ a: "potato", b: "fieldB", c: "potato" }]);
    expect(yq("a:\n  b: apple\n", '.a.b = "frog"')).toEqual([{ a: { b: "frog" } }]);
    expect(yq("a:\n  b: apple\n", '.a.b |= "frog"')).toEqual([{ a: { b: "frog" } }]);
  });
  it("updates selected nodes and creates missing maps and arrays", () => {
    expect(yq("a:\n  b: apple\n  c: cactus\n", '(.a[] | select(. == "apple")) = "frog"')).toEqual([{ a: { b: "frog", c: "cactus" } }]);
    expect(yq("- candy\n- apple\n- sandy\n", '(.[] | select(. == "*andy")) = "bogs"')).toEqual([["bogs", "apple", "bogs"]]);
    expect(yq("{}\n", '.a.b |= "bogs"')).toEqual([{ a: { b: "bogs" } }]);
    expect(yq("{}\n", '.a.b.[0] |= "bogs"')).toEqual([{ a: { b: ["bogs"] } }]);
  });
});

describe("yq docs: add", () => {
  it("concatenates arrays and appends", () => {
    expect(yq("a:\n  - 1\n  - 2\nb:\n  - 3\n  - 4\n", ".a + .b")).toEqual([[1, 2, 3, 4]]);
    expect(yq("a: [1,2]\nb:\n  - 3\n  - 4\n", ".a += .b")).toEqual([{ a: [1, 2, 3, 4], b: [3, 4] }]);
    expect(yq("a:\n  - 1\n  - 2\n", ".a + null")).toEqual([[1, 2]]);
    expect(yq("a: ['dog']\n", '.a += "cat"')).toEqual([{ a: ["dog", "cat"] }]);
    expect(yq("a:\n  - dog: woof\n", '.a + {"cat": "meow"}')).toEqual([[{ dog: "woof" }, { cat: "meow" }]]);
  });
  it("appends relative to each match, creating missing arrays", () => {
    expect(yq("a:\n  a1:\n    b:\n      - cat\n  a2:\n    b:\n      - dog\n  a3: {}\n", '.a[].b += ["mouse"]')).toEqual([
      { a: { a1: { b: ["cat", "mouse"] }, a2: { b: ["dog", "mouse"] }, a3: { b: ["mouse"] } } },
    ]);
  });
  it("adds strings, numbers and null, and shallow-merges maps", () => {
    expect(yq("a: cat\nb: meow\n", ".a += .b")).toEqual([{ a: "catmeow", b: "meow" }]);
    expect(yq("a: 3\nb: 4.9\n", ".a = .a + .b")).toEqual([{ a: 7.9, b: 4.9 }]);
    expect(yq("a: 3\nb: 4\n", ".a = .a + .b")).toEqual([{ a: 7, b: 4 }]);
    expect(yq("a: 3\nb: 5\n", ".[] += 1")).toEqual([{ a: 4, b: 6 }]);
    expect(yq(null, 'null + "cat"')).toEqual(["cat"]);
    const maps = "a:\n  thing:\n    name: Astuff\n    value: x\n  a1: cool\nb:\n  thing:\n    name: Bstuff\n    legs: 3\n  b1: neat\n";
    expect(yq(maps, ".a += .b")).toEqual([
      {
        a: { thing: { name: "Bstuff", legs: 3 }, a1: "cool", b1: "neat" },
        b: { thing: { name: "Bstuff", legs: 3 }, b1: "neat" },
      },
    ]);
  });
});

describe("yq docs: subtract", () => {
  it("removes array elements (nested values compared deeply, key order ignored)", () => {
    expect(yq(null, "[1,2] - [2,3]")).toEqual([[1]]);
    expect(yq(null, "[[1], 1, 2] - [[1], 3]")).toEqual([[1, 2]]);
    expect(yq("- a: b\n  c: d\n- a: b\n", '. - [{"c": "d", "a": "b"}]')).toEqual([[{ a: "b" }]]);
  });
  it("subtracts numbers", () => {
    expect(yq("a: 3\nb: 4.5\n", ".a = .a - .b")).toEqual([{ a: -1.5, b: 4.5 }]);
    expect(yq("a: 3\nb: 4\n", ".a = .a - .b")).toEqual([{ a: -1, b: 4 }]);
    expect(yq("a: 3\nb: 5\n", ".[] -= 1")).toEqual([{ a: 2, b: 4 }]);
  });
});

describe("yq docs: multiply-merge", () => {
  const ab = "a:\n  field: me\n  fieldA: cat\nb:\n  field:\n    g: wizz\n  fieldB: dog\n";
  it("multiplies integers", () => {
    expect(yq("a: 3\nb: 4\n", ".a *= .b")).toEqual([{ a: 12, b: 4 }]);
  });
  it("deep-merges objects; arrays are replaced", () => {
    expect(yq(ab, ".a * .b")).toEqual([{ field: { g: "wizz" }, fieldA: "cat", fieldB: "dog" }]);
    expect(yq(ab, '. * {"a":.b}')).toEqual([
      { a: { field: { g: "wizz" }, fieldA: "cat", fieldB: "dog" }, b: { field: { g: "wizz" }, fieldB: "dog" } },
    ]);
    expect(yq('a: {things: great}\nb:\n  also: "me"\n', '. * {"a":.b}')).toEqual([{ a: { things: "great", also: "me" }, b: { also: "me" } }]);
    expect(yq("a:\n  - 1\n  - 2\n  - 3\nb:\n  - 3\n  - 4\n  - 5\n", '. * {"a":.b}')).toEqual([{ a: [3, 4, 5], b: [3, 4, 5] }]);
    expect(yq("a: cat\nb: dog\n", '. * {"a": {"c": .a}}')).toEqual([{ a: { c: "cat" }, b: "dog" }]);
  });
});

describe("yq docs: delete", () => {
  it("deletes map entries, array elements and matches", () => {
    expect(yq("{a: cat, b: dog}\n", "del(.b)")).toEqual([{ a: "cat" }]);
    expect(yq("{a: {a1: fred, a2: frood}}\n", "del(.a.a1)")).toEqual([{ a: { a2: "frood" } }]);
    expect(yq("[1, 2, 3]\n", "del(.[1])")).toEqual([[1, 3]]);
    expect(yq("[{a: cat, b: dog}]\n", "del(.[0].a)")).toEqual([[{ b: "dog" }]]);
    expect(yq("{a: cat, b: dog}\n", "del(.c)")).toEqual([{ a: "cat", b: "dog" }]);
    expect(yq("{a: cat, b: dog, c: bat}\n", 'del( .[] | select(. == "*at") )')).toEqual([{ b: "dog" }]);
    expect(yq("{a: {name: frog, b: {name: blog, age: 12}}}\n", 'del(.. | select(has("name")).name)')).toEqual([{ a: { b: { age: 12 } } }]);
    // from an array kiln made (yq's operator_delete_test.go: "Delete entry from keys array")
    expect(yq('{"a": 1, "b": 2, "c": 3}\n', 'keys | del(.[] | select(.=="b"))')).toEqual([["a", "c"]]);
  });
});

describe("yq docs: select", () => {
  it("filters with wildcards, regular expressions and boolean operators", () => {
    expect(yq("- cat\n- goat\n- dog\n", '.[] | select(. == "*at")')).toEqual(["cat", "goat"]);
    expect(yq("- go-kart\n- goat\n- dog\n", '.[] | select(. == "go*")')).toEqual(["go-kart", "goat"]);
    expect(yq("- ago\n- go\n- meow\n- going\n", '.[] | select(. == "*go*")')).toEqual(["ago", "go", "going"]);
    expect(yq("- this_0\n- not_this\n- nor_0_this\n- thisTo_4\n", '.[] | select(test("[a-zA-Z]+_[0-9]$"))')).toEqual(["this_0", "thisTo_4"]);
    expect(yq("things: cat\nbob: goat\nhorse: dog\n", '.[] | select(. == "cat" or test("og$"))')).toEqual(["cat", "dog"]);
    expect(yq("name: bob\nlegs: 2\ngame: poker\n", 'with_entries(select(.key | test("ame$")))')).toEqual([{ name: "bob", game: "poker" }]);
    // kept when any result of the condition is true (yq's operator_select_test.go)
    expect(yq("cat\n", "select(false, true)")).toEqual(["cat"]);
    expect(yq("cat\n", "select(true, false)")).toEqual(["cat"]);
    expect(yq("cat\n", "select(false, false)")).toEqual([]);
  });
  it("updates several selected map values", () => {
    expect(yq("a:\n  things: cat\n  bob: goat\n  horse: dog\n", '(.a.[] | select(. == "cat" or . == "goat")) |= "rabbit"')).toEqual([
      { a: { things: "rabbit", bob: "rabbit", horse: "dog" } },
    ]);
  });
});

describe("yq docs: equals, compare, boolean-operators, alternative-default-value", () => {
  it("equals and not-equals, with wildcards; missing keys count as null and are not created", () => {
    expect(yq("- cat\n- goat\n- dog\n", '.[] | (. == "*at")')).toEqual([true, true, false]);
    expect(yq("- cat\n- goat\n- dog\n", '.[] | (. != "*at")')).toEqual([false, false, true]);
    expect(yq("- 3\n- 4\n- 5\n", ".[] | (. == 4)")).toEqual([false, true, false]);
    expect(yq("- 3\n- 4\n- 5\n", ".[] | (. != 4)")).toEqual([true, false, true]);
    expect(yq(null, "null == ~")).toEqual([true]);
    expect(yq("a: frog\n", 'select(.b != "thing")')).toEqual([{ a: "frog" }]);
    expect(yq("a: frog\n", "select(.b == .c)")).toEqual([{ a: "frog" }]);
  });
  it("compares numbers, strings, date-times and nulls", () => {
    expect(yq("a: 5\nb: 4\n", ".a > .b")).toEqual([true]);
    expect(yq("a: 5\nb: 5\n", ".a >= .b")).toEqual([true]);
    expect(yq("a: zoo\nb: apple\n", ".a > .b")).toEqual([true]);
    expect(yq("a: 2021-01-01T03:10:00Z\nb: 2020-01-01T03:10:00Z\n", ".a > .b")).toEqual([true]);
    expect(yq(null, ".a > .b")).toEqual([false]);
    expect(yq(null, ".a >= .b")).toEqual([true]);
  });
  it("and, or, not", () => {
    expect(yq(null, "true or false")).toEqual([true]);
    expect(yq(null, "true and false")).toEqual([false]);
    expect(yq("- a: bird\n  b: dog\n- a: frog\n  b: bird\n- a: cat\n  b: fly\n", '[.[] | select(.a == "cat" or .b == "dog")]')).toEqual([
      [
        { a: "bird", b: "dog" },
        { a: "cat", b: "fly" },
      ],
    ]);
    expect(yq(null, "true | not")).toEqual([false]);
    expect(yq(null, "false | not")).toEqual([true]);
    expect(yq(null, '"cat" | not')).toEqual([false]);
    expect(yq(null, '"" | not')).toEqual([false]);
    expect(yq(null, "1 | not")).toEqual([false]);
    expect(yq(null, "0 | not")).toEqual([false]);
    expect(yq(null, "~ | not")).toEqual([true]);
  });
  it("alternative (default value), including update-or-create", () => {
    expect(yq("{a: bridge}\n", '.a // "hello"')).toEqual(["bridge"]);
    expect(yq("{}\n", '.a // "hello"')).toEqual(["hello"]);
    expect(yq("{a: ~}\n", '.a // "hello"')).toEqual(["hello"]);
    expect(yq("{a: false}\n", '.a // "hello"')).toEqual(["hello"]);
    expect(yq("{a: false, b: cat}\n", ".a // .b")).toEqual(["cat"]);
    expect(yq("a: 1\n", "(.a // (.a = 0)) += 1")).toEqual([{ a: 2 }]);
    expect(yq("b: camel\n", "(.a // (.a = 0)) += 1")).toEqual([{ b: "camel", a: 1 }]);
  });
});

describe("yq docs: entries, keys, length, has, map, first", () => {
  it("to_entries / from_entries / with_entries", () => {
    expect(yq("a: 1\nb: 2\n", "to_entries")).toEqual([
      [
        { key: "a", value: 1 },
        { key: "b", value: 2 },
      ],
    ]);
    expect(yq("- a\n- b\n", "to_entries")).toEqual([
      [
        { key: 0, value: "a" },
        { key: 1, value: "b" },
      ],
    ]);
    expect(yq("null\n", "to_entries")).toEqual([]);
    expect(yq("a: 1\nb: 2\n", "to_entries | from_entries")).toEqual([{ a: 1, b: 2 }]);
    expect(yq("- a\n- b\n", "to_entries | from_entries")).toEqual([{ 0: "a", 1: "b" }]);
    expect(yq("a: 1\nb: 2\n", 'with_entries(.key |= "KEY_" + .)')).toEqual([{ KEY_a: 1, KEY_b: 2 }]);
    expect(yq("a:\n  b: bird\nc:\n  d: dog\n", 'with_entries(select(.value | has("b")))')).toEqual([{ a: { b: "bird" } }]);
  });
  it("keys and length", () => {
    expect(yq("dog: woof\ncat: meow\n", "keys")).toEqual([["dog", "cat"]]);
    expect(yq("- apple\n- banana\n", "keys")).toEqual([[0, 1]]);
    expect(yq("a: cat\n", ".a | length")).toEqual([3]);
    expect(yq("a: null\n", ".a | length")).toEqual([0]);
    expect(yq("a: cat\nc: dog\n", "length")).toEqual([2]);
    expect(yq("- 2\n- 4\n- 6\n- 8\n", "length")).toEqual([4]);
  });
  it("key: reading it, and assigning to it renames the entry in place (operators/keys: 'Update map key')", () => {
    expect(yq("a: {x: 3, y: 4}\n", ".a.y | key")).toEqual(["y"]);
    expect(yq("a: {x: 3, y: 4}\n", '(.a.x | key) = "meow"')).toEqual([{ a: { meow: 3, y: 4 } }]);
    // the renamed key keeps its place among the others
    expect(Object.keys((yq("a: {x: 3, y: 4}\n", '(.a.x | key) |= . + "2"')[0] as { a: object }).a)).toEqual(["x2", "y"]);
    // what a map or an array cannot take is an error at the operator, not a silent no-op
    const clash = kilnError(() => yq("a: {x: 3, y: 4}\n", '(.a.x | key) = "y"'));
    expect(clash.code).toBe("E_YQ_EVAL");
    expect(clash.message).toMatch(/cannot rename key 'x' to 'y'/);
    expect(kilnError(() => yq("- a\n- b\n", "(.[0] | key) = 5")).message).toMatch(/cannot change the key of an array element/);
  });
  it("with_entries updates nested maps too: |= runs on the last match first (operators/entries: 'Use with_entries to update keys recursively')", () => {
    expect(yq("a: 1\nb:\n  b_a: nested\n  b_b: thing\n", '(.. | select(tag=="!!map")) |= with_entries(.key |= "KEY_" + .)')).toEqual([
      { KEY_a: 1, KEY_b: { KEY_b_a: "nested", KEY_b_b: "thing" } },
    ]);
  });
  it("has", () => {
    expect(yq("- a: yes\n- a: ~\n- a:\n- b: nope\n", '.[] | has("a")')).toEqual([true, true, true, false]);
    expect(yq("- a:\n    b:\n      c: cat\n- a:\n    b:\n      d: dog\n", '.[] | select(.a.b | has("c"))')).toEqual([{ a: { b: { c: "cat" } } }]);
    expect(yq("- []\n- [1]\n- [1, 2]\n- [1, null]\n- [1, 2, 3]\n", ".[] | has(1)")).toEqual([false, false, true, true, true]);
  });
  it("map and map_values", () => {
    expect(yq("- 1\n- 2\n- 3\n", "map(. + 1)")).toEqual([[2, 3, 4]]);
    expect(yq("a: 1\nb: 2\nc: 3\n", "map_values(. + 1)")).toEqual([{ a: 2, b: 3, c: 4 }]);
  });
  it("first", () => {
    const arr = "- a: banana\n- a: cat\n- a: apple\n- a: cat\n";
    expect(yq(arr, 'first(.a == "cat")')).toEqual([{ a: "cat" }]);
    expect(yq("- a: 10\n- a: 100\n- a: 1\n", "first(.a > 50)")).toEqual([{ a: 100 }]);
    expect(yq("x:\n  a: banana\ny:\n  a: cat\nz:\n  a: apple\n", 'first(.a == "cat")')).toEqual([{ a: "cat" }]);
    expect(yq(arr, 'first(.a == "dog")')).toEqual([]);
    expect(yq("- a: hi\n- a: hello\n- a: world\n", "first(.a | length > 4)")).toEqual([{ a: "hello" }]);
    expect(yq("- 10\n- 100\n- 1\n", "first")).toEqual([10]);
    expect(yq("[]\n", "first")).toEqual([]);
    expect(yq("hello\n", "first")).toEqual([]);
  });
});

describe("yq docs: variable-operators, string-operators, tag, recursive descent", () => {
  it("binds variables", () => {
    expect(yq("a: cat\n", ".a as $foo | $foo")).toEqual(["cat"]);
    expect(yq("- cat\n- dog\n", ".[] as $foo | $foo")).toEqual(["cat", "dog"]);
    const posts =
      '"posts":\n  - "title": Frist psot\n    "author": anon\n  - "title": A well-written article\n    "author": person1\n' +
      '"realnames":\n  "anon": Anonymous Coward\n  "person1": Person McPherson\n';
    expect(yq(posts, '.realnames as $names | .posts[] | {"title":.title, "author": $names[.author]}')).toEqual([
      { title: "Frist psot", author: "Anonymous Coward" },
      { title: "A well-written article", author: "Person McPherson" },
    ]);
    expect(yq("a: a_value\nb: b_value\n", ".a as $x  | .b as $y | .b = $x | .a = $y")).toEqual([{ a: "b_value", b: "a_value" }]);
  });
  it("test and to_string", () => {
    expect(yq("- cat\n- dog\n", '.[] | test("at")')).toEqual([true, false]);
    // The doc's list also has `~`, which a JS document cannot tell apart from null.
    expect(yq("- 1\n- true\n- null\n- cat\n- an: object\n- - array\n  - 2\n", ".[] |= to_string")).toEqual([
      ["1", "true", "null", "cat", "an: object", "- array\n- 2"],
    ]);
  });
  it("type (tag) and recursive descent", () => {
    expect(yq("a: cat\nb: 5\nc: 3.2\ne: true\nf: []\n", ".. | tag")).toEqual(["!!map", "!!str", "!!int", "!!float", "!!bool", "!!seq"]);
    expect(yq("a: frog\n", "..")).toEqual([{ a: "frog" }, "frog"]);
  });
});

describe("yq docs: env-variable-operators", () => {
  it("reads env() as YAML and strenv() as a string", () => {
    expect(yq(null, ".a = env(myenv)", { myenv: "cat meow" })).toEqual([{ a: "cat meow" }]);
    expect(yq(null, ".a = env(myenv)", { myenv: "true" })).toEqual([{ a: true }]);
    expect(yq(null, ".a = env(myenv)", { myenv: "12" })).toEqual([{ a: 12 }]);
    expect(yq(null, ".a = env(myenv)", { myenv: "{b: fish}" })).toEqual([{ a: { b: "fish" } }]);
    expect(yq(null, ".a = strenv(myenv)", { myenv: "true" })).toEqual([{ a: "true" }]);
    expect(yq(null, ".a = strenv(myenv)", { myenv: "12" })).toEqual([{ a: "12" }]);
    expect(yq("cat: meow\ndog: woof\n", ".[env(myenv)]", { myenv: "cat" })).toEqual(["meow"]);
  });
  it("fails on an unset env() (yq's wording) but gives '' for strenv()", () => {
    const e = kilnError(() => yq(null, ".a = env(NOPE)"));
    expect(e.code).toBe("E_YQ_EVAL");
    expect(e.message).toBe("value for env variable 'NOPE' not provided in env()");
    expect(yq(null, ".a = strenv(NOPE)")).toEqual([{ a: "" }]);
  });
});

describe("yq v4 semantics that differ from jq", () => {
  it("groups operators of equal precedence to the right, as yq's parser does", () => {
    expect(yq(null, "1 - 2 - 3")).toEqual([2]); // 1 - (2 - 3)
    expect(yq(null, "2 * 3 + 1")).toEqual([8]); // 2 * (3 + 1)
    expect(yq(null, "true or false and false")).toEqual([true]); // true or (false and false)
  });
  it("reads .a-b as one key (yq's path rule) and `\"a\" + 1` as string concatenation", () => {
    expect(yq("a-b: 1\na: 5\n", ".a-b")).toEqual([1]);
    expect(yq(null, '"a" + 1')).toEqual(["a1"]);
    expect(yq(null, '1 + "a"')).toEqual(["1a"]);
    expect(yq(null, '1 == "1"')).toEqual([true]); // yq compares scalar text
  });
  it("appends new keys at the end and keeps the place of updated ones", () => {
    expect(Object.keys(applyYq({ b: 1, a: 2 }, ".c = 3 | .b = 4", SRC) as object)).toEqual(["b", "a", "c"]);
  });
  it("creates missing maps and pads arrays when assigning", () => {
    expect(applyYq({}, ".a.b.c = 1 | .x[2] = true", SRC)).toEqual({ a: { b: { c: 1 } }, x: [null, null, true] });
  });
  it("splatting a missing key on the left of an update leaves an empty list behind (as yq does)", () => {
    expect(applyYq({ a: 1 }, '(.init[] | select(. == "FW_TAG")) |= "X"', SRC)).toEqual({ a: 1, init: [] });
  });
  it("evaluates the right side of += against the root, once per match", () => {
    expect(applyYq({ x: 5, a: [{ n: 1 }, { n: 2 }] }, ".a[].n += .x", SRC)).toEqual({ x: 5, a: [{ n: 6 }, { n: 7 }] });
  });
  it("takes the right side of = from the root and the right side of |= from each match", () => {
    expect(applyYq({ v: "root", a: [{ v: 1 }, { v: 2 }] }, ".a[].w = .v", SRC)).toEqual({ v: "root", a: [{ v: 1, w: "root" }, { v: 2, w: "root" }] });
    expect(applyYq({ v: "root", a: [{ v: 1 }, { v: 2 }] }, ".a[].w |= .v", SRC)).toEqual({ v: "root", a: [{ v: 1, w: null }, { v: 2, w: null }] });
    expect(applyYq({ a: [{ v: 1 }, { v: 2 }] }, ".a[] |= .v", SRC)).toEqual({ a: [1, 2] });
  });
  it("deletes many array elements at once, in linear time", () => {
    const items = Array.from({ length: 50_000 }, (_, i) => ({ i, keep: i % 3 === 0 }));
    const t0 = Date.now();
    const out = applyYq({ items }, "del(.items[] | select(.keep == false))", SRC) as { items: Array<{ i: number }> };
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(out.items).toHaveLength(16_667);
    expect(out.items.slice(0, 3).map((x) => x.i)).toEqual([0, 3, 6]);
    expect(applyYq([1, 2, 3, 4, 5], "del(.[1], .[3], .[0])", SRC)).toEqual([3, 5]);
    // Large arrays flow through binds, unions and concatenation without blowing the stack.
    const big = Array.from({ length: 300_000 }, (_, i) => i);
    const joined = applyYq({ a: big, b: big }, ".a as $x | .c = .a + .b | .c |= length", SRC) as { c: number };
    expect(joined.c).toBe(600_000);
    expect(evaluateYq({ a: big }, ".k as $k | .a[]", SRC)).toHaveLength(300_000);
  });
  it("supports comments, newlines, quoted keys, optional `]?`, test flags and single-result functions", () => {
    const expr = ['# set the kernel', '.kernel.image |= "K" # trailing comment', "|", '."binds.add" += ["/a:/a"]'].join("\n");
    expect(applyYq({ kernel: { image: "x" } }, expr, SRC)).toEqual({ kernel: { image: "K" }, "binds.add": ["/a:/a"] });
    expect(yq(null, '"a\\tb\\n\\"c\\"" | length')).toEqual([7]); // a, tab, b, newline, ", c, "
    expect(yq("[a, b]\n", '.["x"]?')).toEqual([]);
    expect(yq("- Cat\n- dog\n", '.[] | test("(?i)cat"; "g")')).toEqual([true, false]);
    // `|` binds tighter than `,`: the parentheses keep all three on .a
    expect(yq("a: {b: 1}\n", ".a | (type, keys, (to_entries | length))")).toEqual(["!!map", ["b"], 1]);
    expect(yq("a: {b: 1}\n", ".a | type, keys")).toEqual(["!!map", ["a"]]);
  });
  it("accepts jq's limit(n; f) and bare object keys as extensions (yq v4 has neither)", () => {
    expect(yq("- 1\n- 2\n- 3\n", "limit(2; .[])")).toEqual([1, 2]);
    expect(yq("- 1\n- 2\n", "limit(0; .[])")).toEqual([]);
    expect(yq("a: 1\n", "{name: .a, other: 2}")).toEqual([{ name: 1, other: 2 }]);
  });
});

// ---- EVE's modifiers ----------------------------------------------------------------------------
// Expression texts below are copied verbatim from lf-edge/eve (Apache-2.0), files named in each
// test; the documents are small EVE-like rootfs/installer ymls written for these tests, and the
// expected documents are worked out by hand from yq v4's semantics.

function rootfs() {
  return {
    kernel: { image: "KERNEL_TAG", cmdline: "rootdelay=3" },
    init: ["GRUB_TAG", "FW_TAG", "XEN_TAG", "GPTTOOLS_TAG", "DOM0ZTOOLS_TAG", "RNGD_TAG"],
    onboot: [
      { name: "rngd", image: "RNGD_TAG", command: ["/sbin/rngd", "-1"] },
      { name: "sysctl", image: "SYSCTL_TAG" },
      { name: "storage-init", image: "STORAGE_INIT_TAG" },
      { name: "pillar-onboot", image: "PILLAR_TAG" },
    ],
    services: [
      { name: "newlogd", image: "NEWLOGD_TAG", cgroupsPath: "/eve/services/newlogd" },
      { name: "edgeview", image: "EDGEVIEW_TAG" },
      { name: "debug", image: "DEBUG_TAG", cgroupsPath: "/eve/services/debug" },
      { name: "pillar", image: "PILLAR_TAG", oomScoreAdj: -999 },
    ],
    files: [
      { path: "/etc/eve-hv-type", contents: "EVE_HV" },
      { path: "/etc/issue", contents: "EVE\n" },
    ],
  };
}

function installer() {
  return {
    kernel: { image: "KERNEL_TAG" },
    init: ["GRUB_TAG", "FW_TAG"],
    onboot: [
      { name: "rngd", image: "RNGD_TAG" },
      { name: "installer", image: "INSTALLER_TAG", binds: ["/dev:/dev"] },
    ],
    files: [
      { path: "/rootfs.img", source: "rootfs.img" },
      { path: "/config.img", source: "config.img" },
    ],
  };
}

const MOD = (file: string) => ({ file, line: 1, col: 1 });

describe("EVE modifiers (lf-edge/eve, Apache-2.0)", () => {
  it("images/modifiers/hv/k.yq adds the kube service and swaps the firmware", () => {
    const expr =
      '.services += [{"name": "kube","image": "KUBE_TAG", "cgroupsPath": "/eve/services/kube", "oomScoreAdj": -999}] |\n' +
      '(.init[] | select(. == "FW_TAG")) |= "FW_K_TAG"\n';
    const want = rootfs() as { services: object[]; init: string[] };
    want.services.push({ name: "kube", image: "KUBE_TAG", cgroupsPath: "/eve/services/kube", oomScoreAdj: -999 });
    want.init[1] = "FW_K_TAG";
    const out = applyYq(rootfs(), expr, MOD("images/modifiers/hv/k.yq"));
    expect(out).toEqual(want);
    expect(Object.keys((out as typeof want).services[4]!)).toEqual(["name", "image", "cgroupsPath", "oomScoreAdj"]);
  });

  it("images/modifiers/hv/mini.yq keeps only the minimal init, onboot and services", () => {
    const expr =
      'del(.init[] | select(test("DOM0ZTOOLS_TAG|GRUB_TAG|GPTTOOLS_TAG") != true)) | del(.onboot[] | select(.name != "storage-init")) | del(.services[] | select(.name != "debug")) | .kernel.image |= "KERNEL_TAG"';
    const doc = { ...rootfs(), kernel: { image: "KERNEL_XEN_TAG", cmdline: "rootdelay=3" } };
    expect(applyYq(doc, expr, MOD("images/modifiers/hv/mini.yq"))).toEqual({
      kernel: { image: "KERNEL_TAG", cmdline: "rootdelay=3" },
      init: ["GRUB_TAG", "GPTTOOLS_TAG", "DOM0ZTOOLS_TAG"],
      onboot: [{ name: "storage-init", image: "STORAGE_INIT_TAG" }],
      services: [{ name: "debug", image: "DEBUG_TAG", cgroupsPath: "/eve/services/debug" }],
      files: rootfs().files,
    });
  });

  it("images/modifiers/kubevirt.yq and platform/nvidia-jp7/nvidia-jp7.yq append", () => {
    const kube = applyYq(
      rootfs(),
      '.services += [{"name": "kube","image": "KUBE_TAG", "cgroupsPath": "/eve/services/kube", "oomScoreAdj": -999}]\n',
      MOD("images/modifiers/kubevirt.yq"),
    ) as ReturnType<typeof rootfs>;
    expect(kube.services.map((s) => s.name)).toEqual(["newlogd", "edgeview", "debug", "pillar", "kube"]);
    const jp7 = applyYq(rootfs(), '.init += ["NVIDIA_TAG"]\n', MOD("images/modifiers/platform/nvidia-jp7/nvidia-jp7.yq"));
    expect((jp7 as ReturnType<typeof rootfs>).init).toEqual([...rootfs().init, "NVIDIA_TAG"]);
  });

  it("platform/evaluation rootfs-*.yq and acrn.yq replace kernel and firmware tags", () => {
    const generic = applyYq(rootfs(), '((.init[] | select(. == "FW_TAG")) |= "FW_GENERIC_TAG")\n', MOD("rootfs-generic.yq"));
    expect((generic as ReturnType<typeof rootfs>).init[1]).toBe("FW_GENERIC_TAG");
    for (const [file, tag] of [
      ["rootfs-hwe.yq", "KERNEL_EVAL_HWE_TAG"],
      ["rootfs-lts.yq", "KERNEL_EVAL_LTS_HWE_TAG"],
      ["rootfs-ubuntu.yq", "KERNEL_EVAL_UBUNTU_TAG"],
    ]) {
      const out = applyYq(rootfs(), `.kernel.image |= "${tag}"\n`, MOD(`images/modifiers/platform/evaluation/${file}`));
      expect(out).toEqual({ ...rootfs(), kernel: { image: tag, cmdline: "rootdelay=3" } });
    }
    const acrn = applyYq(rootfs(), '((.init[] | select(. == "XEN_TAG")) |= "ACRN_TAG") | .kernel.image |= "ACRN_KERNEL_TAG"', MOD("acrn.yq"));
    expect(acrn).toEqual({
      ...rootfs(),
      init: ["GRUB_TAG", "FW_TAG", "ACRN_TAG", "GPTTOOLS_TAG", "DOM0ZTOOLS_TAG", "RNGD_TAG"],
      kernel: { image: "ACRN_KERNEL_TAG", cmdline: "rootdelay=3" },
    });
  });

  it("images/modifiers/platform/evaluation/installer.yq (current) adds binds and rootfs images", () => {
    const expr =
      '(.onboot[] | select(.name == "installer"))."binds.add" += ["/rootfs-b.img:/bits/rootfs-b.img:ro", "/rootfs-c.img:/bits/rootfs-c.img:ro"] |\n' +
      '.files += [{"path": "/rootfs-b.img", "source": "rootfs-evaluation-ubuntu.img"}, {"path": "/rootfs-c.img", "source": "rootfs-evaluation-lts.img"}] | ((.files[] | select(.path == "/rootfs.img")).source) |= "rootfs-evaluation-generic.img"\n';
    expect(applyYq(installer(), expr, MOD("images/modifiers/platform/evaluation/installer.yq"))).toEqual({
      kernel: { image: "KERNEL_TAG" },
      init: ["GRUB_TAG", "FW_TAG"],
      onboot: [
        { name: "rngd", image: "RNGD_TAG" },
        {
          name: "installer",
          image: "INSTALLER_TAG",
          binds: ["/dev:/dev"],
          "binds.add": ["/rootfs-b.img:/bits/rootfs-b.img:ro", "/rootfs-c.img:/bits/rootfs-c.img:ro"],
        },
      ],
      files: [
        { path: "/rootfs.img", source: "rootfs-evaluation-generic.img" },
        { path: "/config.img", source: "config.img" },
        { path: "/rootfs-b.img", source: "rootfs-evaluation-ubuntu.img" },
        { path: "/rootfs-c.img", source: "rootfs-evaluation-lts.img" },
      ],
    });
  });

  it("images/modifiers/platform/evaluation/installer.yq (older, multi-line) appends to an existing binds.add", () => {
    const expr =
      '(.onboot[] | select(.name == "installer"))."binds.add" += [\n  "/rootfs-b.img:/bits/rootfs-b.img:ro",\n  "/rootfs-c.img:/bits/rootfs-c.img:ro"\n ] |\n' +
      '.files += [\n  {"path": "/rootfs-b.img", "source": "rootfs-b.img"},\n  {"path": "/rootfs-c.img", "source": "rootfs-c.img"}\n] |\n' +
      '.kernel.image |= "KERNEL_EVAL_HWE_TAG"\n';
    const doc = installer();
    (doc.onboot[1] as Record<string, unknown>)["binds.add"] = ["/persist:/persist"];
    const out = applyYq(doc, expr, MOD("images/modifiers/platform/evaluation/installer.yq")) as ReturnType<typeof installer>;
    expect((out.onboot[1] as Record<string, unknown>)["binds.add"]).toEqual([
      "/persist:/persist",
      "/rootfs-b.img:/bits/rootfs-b.img:ro",
      "/rootfs-c.img:/bits/rootfs-c.img:ro",
    ]);
    expect(out.files.map((f) => f.source)).toEqual(["rootfs.img", "config.img", "rootfs-b.img", "rootfs-c.img"]);
    expect(out.kernel.image).toBe("KERNEL_EVAL_HWE_TAG");
  });

  it("tools/compose-image-yml.sh's own expressions (dev flavour, hypervisor patch)", () => {
    let doc: unknown = rootfs();
    doc = applyYq(doc, '(.onboot[] | select(.image == "PILLAR_TAG").image) |= "PILLAR_DEV_TAG"', SRC);
    doc = applyYq(doc, '(.services[] | select(.image == "PILLAR_TAG").image) |= "PILLAR_DEV_TAG"', SRC);
    doc = applyYq(doc, '(.files[] | select(.contents == "EVE_HV")).contents |= "kvm"', SRC);
    const out = doc as ReturnType<typeof rootfs>;
    expect(out.onboot[3]!.image).toBe("PILLAR_DEV_TAG");
    expect(out.services[3]!.image).toBe("PILLAR_DEV_TAG");
    expect(out.files[0]!.contents).toBe("kvm");
    expect(out.services.filter((s) => s.image === "PILLAR_DEV_TAG")).toHaveLength(1);
  });

  it("images/rootfs-adam-kvm.yml.in.yq (jq-era syntax: limit and bare keys) inserts adam after newlogd", () => {
    const expr =
      '   limit(1; .services | to_entries[] | select(.value.name == "newlogd") | .key + 1) as $idx\n' +
      "   | .services |= .[0:$idx] +\n" +
      '                  [{name: "adam", image: "lfedge/adam:latest", binds: ["/var/persist:/persist", "/var/config:/config"], command: ["/bin/eve-embedded.sh"]}] +\n' +
      "                  .[$idx:]\n";
    const out = applyYq(rootfs(), expr, MOD("images/rootfs-adam-kvm.yml.in.yq")) as ReturnType<typeof rootfs>;
    expect(out.services.map((s) => s.name)).toEqual(["newlogd", "adam", "edgeview", "debug", "pillar"]);
    expect(out.services[1]).toEqual({
      name: "adam",
      image: "lfedge/adam:latest",
      binds: ["/var/persist:/persist", "/var/config:/config"],
      command: ["/bin/eve-embedded.sh"],
    });
  });

  it("images/modifiers/platform/tools.yq (`.services |= .+ [...]`) is refused: yq reads `.+` as a key", () => {
    const expr = '.services |= .+ [{"name": "kvm-tools","image": "KVMTOOLS_TAG", "cgroupsPath": "/eve/services/kvmtool"}]';
    const e = kilnError(() => applyYq(rootfs(), expr, MOD("images/modifiers/platform/tools.yq")));
    expect(e.code).toBe("E_YQ_SYNTAX");
    expect(e.location).toEqual({ file: "images/modifiers/platform/tools.yq", line: 1, col: 14 });
    expect(e.message).toContain("write '. +'");
    // With the space, as yq needs, it works.
    const fixed = applyYq(rootfs(), expr.replace(".+", ". +"), SRC) as ReturnType<typeof rootfs>;
    expect(fixed.services.at(-1)).toEqual({ name: "kvm-tools", image: "KVMTOOLS_TAG", cgroupsPath: "/eve/services/kvmtool" });
  });

  it("does not mutate the input document", () => {
    const doc = deepFreeze(rootfs());
    const before = structuredClone(doc);
    applyYq(doc, 'del(.services[0]) | .init += ["X"] | .kernel.image |= "Y" | .files[0].contents = "kvm"', SRC);
    expect(doc).toEqual(before);
  });
});

describe("errors", () => {
  it("E_YQ_SYNTAX points at line:col inside a multi-line file, offset by source.line", () => {
    const expr = ['.kernel.image |= "K" |', "# comment line", '.files[] | select(.path == "/x")) |= 1'].join("\n");
    const e = kilnError(() => parseYq(expr, { file: "images/modifiers/hv/x.yq", line: 10 }));
    expect(e.code).toBe("E_YQ_SYNTAX");
    expect(e.message).toBe("unexpected ')'");
    expect(e.location).toEqual({ file: "images/modifiers/hv/x.yq", line: 12, col: 33 });
    // On the first line the column is offset by source.col.
    const e2 = kilnError(() => parseYq('.a = "unterminated', { file: "f.yml", line: 3, col: 7 }));
    expect(e2.message).toContain("unterminated string");
    expect(e2.location).toEqual({ file: "f.yml", line: 3, col: 12 });
    expect(kilnError(() => parseYq(".a = 'x'", SRC)).message).toContain("double quotes");
    expect(kilnError(() => parseYq(".a | frobnicate", SRC)).message).toContain("unknown word 'frobnicate'");
    expect(kilnError(() => parseYq("(.a", SRC)).message).toContain("expected ')'");
    expect(kilnError(() => parseYq(".a -1", SRC)).message).toContain("write '- 1' to subtract");
    expect(kilnError(() => parseYq(".a as $x", SRC)).message).toContain("must use variable with a pipe");
  });

  it("E_YQ_UNSUPPORTED names the operator and where it is", () => {
    const e = kilnError(() => parseYq(".a |\n  sort_by(.a)", SRC));
    expect(e.code).toBe("E_YQ_UNSUPPORTED");
    expect(e.message).toBe("yq operator 'sort_by' is not supported by kiln");
    expect(e.location).toEqual({ file: SRC.file, line: 2, col: 3 });
    expect(e.hint).toContain("docs/modifiers.md");
    expect(kilnError(() => parseYq('load("x")', SRC)).message).toBe("yq operator 'load' is not supported by kiln");
    expect(kilnError(() => parseYq(".a *+ .b", SRC)).message).toBe("yq operator '*+' is not supported by kiln");
    expect(kilnError(() => parseYq(".a / 2", SRC)).message).toBe("yq operator '/' is not supported by kiln");
    expect(kilnError(() => parseYq('"x\\(.a)"', SRC)).code).toBe("E_YQ_UNSUPPORTED");
    expect(kilnError(() => parseYq(". | @base64", SRC)).message).toBe("yq operator '@base64' is not supported by kiln");
    expect(kilnError(() => parseYq(".a | last", SRC)).message).toContain("jq function");
    const reduce = kilnError(() => parseYq(".[] as $i ireduce (0; . + $i)", SRC));
    expect([reduce.code, reduce.message]).toEqual(["E_YQ_UNSUPPORTED", "yq operator 'ireduce' is not supported by kiln"]);
    expect(kilnError(() => parseYq("if .a then 1 else 2 end", SRC)).message).toBe("yq operator 'if' is not supported by kiln");
    expect(kilnError(() => parseYq(".a; .b", SRC)).code).toBe("E_YQ_UNSUPPORTED");
    expect(kilnError(() => parseYq(".a | type = \"!!str\"", SRC)).code).toBe("E_YQ_UNSUPPORTED");
    // Never silently ignored: applying reports the same error before touching the document.
    expect(kilnError(() => applyYq({ a: [] }, ".a |= sort_by(.x)", SRC)).code).toBe("E_YQ_UNSUPPORTED");
  });

  it("E_YQ_EVAL for type errors, with yq's wording and the operator's location", () => {
    const add = kilnError(() => applyYq({ a: { b: 1 } }, ".a = .a + 1", SRC));
    expect(add.code).toBe("E_YQ_EVAL");
    expect(add.message).toBe("!!int () cannot be added to a !!map (a)");
    expect(add.location).toEqual({ file: SRC.file, line: 1, col: 9 });
    expect(kilnError(() => applyYq({}, "1 + true", SRC)).message).toBe("!!int cannot be added to !!bool");
    expect(kilnError(() => applyYq({}, '"a" - 1', SRC)).message).toBe("strings cannot be subtracted");
    expect(kilnError(() => applyYq({ a: [1] }, ".a.b", SRC)).message).toBe("cannot index array with 'b'");
    expect(kilnError(() => applyYq({ a: "x" }, ".a | keys", SRC)).message).toBe("Cannot get keys of !!str, keys only works for maps and arrays");
    expect(kilnError(() => applyYq({ a: [1] }, '.a[] | test("x")', SRC)).message).toContain("cannot match with !!int");
    expect(kilnError(() => applyYq({ a: {} }, ".a | from_entries", SRC)).message).toBe("from entries only runs against arrays");
    expect(kilnError(() => applyYq({ a: "s" }, ".a * .a", SRC)).message).toBe("cannot multiply !!str with !!str");
    expect(kilnError(() => applyYq({ a: [1] }, ".a[-5]", SRC)).message).toBe("index [-5] out of range, array size is 1");
  });

  it("a modifier must produce exactly one document", () => {
    const e = kilnError(() => applyYq({ a: 1, b: 2 }, ".a, .b", SRC));
    expect(e.code).toBe("E_YQ_EVAL");
    expect(e.message).toContain("produced 2 results");
    expect(kilnError(() => applyYq({ a: 1 }, "select(.a == 2)", SRC)).message).toContain("produced 0 results");
  });

  it("an empty (or comment-only) expression leaves the document as it is", () => {
    expect(applyYq({ a: 1 }, "# nothing to do\n", SRC)).toEqual({ a: 1 });
    expect(Y("a: 1")).toEqual({ a: 1 });
  });
});
