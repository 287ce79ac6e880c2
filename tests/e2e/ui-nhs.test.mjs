// The window's NHS number check (ui/js/nhs.js), in Node without a window: it must agree with
// the backend's Modulus 11 rule so staff see a typing error before anything is sent.

import { test } from "node:test";
import assert from "node:assert/strict";
import { checkNhsNumber, describeWait, groupNhsDigits, nhsCheckDigit } from "../../ui/js/nhs.js";

test("valid numbers pass with or without spaces and hyphens, shown 3-3-4", () => {
  for (const raw of ["9990000018", "999 000 0018", "999-000-0018", " 943 476 5919 "]) {
    const c = checkNhsNumber(raw);
    assert.equal(c.state, "valid", raw);
  }
  assert.equal(checkNhsNumber("9434765919").formatted, "943 476 5919");
});

test("a wrong check digit, letters and too many digits are invalid; fewer digits are still being typed", () => {
  assert.equal(checkNhsNumber("9990000019").state, "invalid");
  assert.match(checkNhsNumber("9990000019").message, /check digit does not match/);
  assert.equal(checkNhsNumber("999000001X").state, "invalid");
  assert.equal(checkNhsNumber("99900000181").state, "invalid");
  assert.equal(checkNhsNumber("999 000").state, "incomplete");
  assert.equal(checkNhsNumber("").state, "empty");
});

test("the check digit follows Modulus 11: remainder 11 is 0 and remainder 10 has no valid number", () => {
  assert.equal(nhsCheckDigit("943476591"), 9);
  assert.equal(nhsCheckDigit("999000001"), 8);
  assert.equal(nhsCheckDigit("400000008"), null);
  // Every nine-digit prefix whose check would be 10 yields no valid number at all.
  for (let last = 0; last <= 9; last++) {
    const prefix = `40000000${last}`;
    const check = nhsCheckDigit(prefix);
    if (check === null) assert.equal(checkNhsNumber(`${prefix}0`).state, "invalid");
    else assert.equal(checkNhsNumber(`${prefix}${check}`).state, "valid");
  }
  // Sum 0 → remainder 0 → 11 - 0 = 11 → check digit 0.
  assert.equal(nhsCheckDigit("000000000"), 0);
});

test("digits group as typed and waits read in words", () => {
  assert.equal(groupNhsDigits("99900"), "999 00");
  assert.equal(groupNhsDigits("9990000018"), "999 000 0018");
  assert.equal(describeWait(400), "less than a second");
  assert.equal(describeWait(4_200), "about 4 seconds");
  assert.equal(describeWait(180_000), "about 3 minutes");
});
