// NHS number checks in the window, for instant feedback while typing. The backend checks
// again (domain::NhsNumber); the messages here match its wording so staff see one story.

/** The Modulus 11 check digit for nine digits, or null when none exists (remainder 1 → 10). */
export function nhsCheckDigit(nine) {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(nine[i]) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 11) return 0;
  if (check === 10) return null;
  return check;
}

/**
 * Checks what was typed so far. Returns `{state, digits, formatted, message}` where state is
 * "empty", "incomplete" (still typing, fewer than 10 digits), "invalid" or "valid".
 * Spaces and hyphens between groups are allowed, as in the backend.
 */
export function checkNhsNumber(raw) {
  const text = String(raw ?? "").trim();
  if (!text) return { state: "empty", digits: "", formatted: "", message: "" };
  if (!/^[0-9 -]+$/.test(text)) {
    return {
      state: "invalid",
      digits: "",
      formatted: text,
      message: "An NHS number contains only digits (spaces and hyphens are allowed between groups)",
    };
  }
  const digits = text.replace(/[ -]/g, "");
  const formatted = groupNhsDigits(digits);
  if (digits.length < 10) {
    return { state: "incomplete", digits, formatted, message: `An NHS number has 10 digits; this has ${digits.length}` };
  }
  if (digits.length > 10) {
    return { state: "invalid", digits, formatted, message: `An NHS number has 10 digits; this has ${digits.length}` };
  }
  const check = nhsCheckDigit(digits.slice(0, 9));
  if (check === null || check !== Number(digits[9])) {
    return {
      state: "invalid",
      digits,
      formatted,
      message: "This is not a valid NHS number: the check digit does not match (please check for a typing error)",
    };
  }
  return { state: "valid", digits, formatted, message: "" };
}

/** Groups digits 3-3-4 as they are typed ("999000", → "999 000"). */
export function groupNhsDigits(digits) {
  const d = String(digits ?? "");
  return [d.slice(0, 3), d.slice(3, 6), d.slice(6)].filter(Boolean).join(" ");
}

/** Milliseconds as staff read a wait: "less than a second", "about 4 seconds", "about 2 minutes". */
export function describeWait(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n < 1000) return "less than a second";
  const seconds = Math.round(n / 1000);
  if (seconds < 90) return `about ${seconds} second${seconds === 1 ? "" : "s"}`;
  return `about ${Math.round(seconds / 60)} minutes`;
}
