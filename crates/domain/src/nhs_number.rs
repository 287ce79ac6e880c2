//! NHS numbers: ten digits, Modulus 11 check digit, shown 3-3-4.
//! Validated before any request is sent, so nothing TPP would reject leaves the app.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number has 10 digits; this has {0}")]
    WrongLength(usize),
    #[error("an NHS number contains only digits (spaces and hyphens are allowed between groups)")]
    NotDigits,
    #[error("this is not a valid NHS number: the check digit does not match (please check for a typing error)")]
    BadCheckDigit,
}

impl NhsNumber {
    /// Parses a number typed with or without spaces or hyphens ("943 476 5919", "9434765919").
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u8; 10];
        let mut count = 0usize;
        for ch in input.trim().chars() {
            match ch {
                ' ' | '-' => continue,
                '0'..='9' => {
                    if count < 10 {
                        digits[count] = ch as u8 - b'0';
                    }
                    count += 1;
                }
                _ => return Err(NhsNumberError::NotDigits),
            }
        }
        if count != 10 {
            return Err(NhsNumberError::WrongLength(count));
        }
        match check_digit(&digits[..9]) {
            Some(check) if check == digits[9] => Ok(NhsNumber(digits)),
            _ => Err(NhsNumberError::BadCheckDigit),
        }
    }

    /// Builds a valid number from nine leading digits, if a check digit exists for them.
    pub fn from_nine_digits(first_nine: [u8; 9]) -> Option<Self> {
        let check = check_digit(&first_nine)?;
        let mut digits = [0u8; 10];
        digits[..9].copy_from_slice(&first_nine);
        digits[9] = check;
        Some(NhsNumber(digits))
    }

    /// The ten digits, no spaces: the form SystmOne and the store use.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// The 3-3-4 form staff read ("943 476 5919").
    pub fn formatted(&self) -> String {
        let d = self.digits();
        format!("{} {} {}", &d[0..3], &d[3..6], &d[6..10])
    }

    /// `999 000 0000`–`999 999 9999` is reserved for testing and never issued.
    pub fn is_test_range(&self) -> bool {
        self.0[..3] == [9, 9, 9]
    }
}

/// Modulus 11: weights 10..2 over the first nine digits; 11 → 0, 10 → no valid number.
fn check_digit(first_nine: &[u8]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        n => Some(n as u8),
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted())
    }
}

/// Redacted: an NHS number identifies a patient, so it must not reach info-level logs via `?`.
impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber([redacted])")
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NhsNumber::parse(s)
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits())
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        NhsNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_published_example_in_any_spacing() {
        for typed in [
            "9434765919",
            "943 476 5919",
            "943-476-5919",
            " 943 4765919 ",
        ] {
            let n = NhsNumber::parse(typed).unwrap();
            assert_eq!(n.formatted(), "943 476 5919");
            assert_eq!(n.digits(), "9434765919");
        }
    }

    #[test]
    fn rejects_bad_check_digit_length_and_letters() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::BadCheckDigit)
        );
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength(9))
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength(11))
        );
        assert_eq!(
            NhsNumber::parse("94347A5919"),
            Err(NhsNumberError::NotDigits)
        );
        assert_eq!(NhsNumber::parse(""), Err(NhsNumberError::WrongLength(0)));
    }

    #[test]
    fn debug_is_redacted() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert!(!format!("{n:?}").contains("943"));
    }

    proptest! {
        #[test]
        fn any_generated_number_round_trips(first in proptest::array::uniform9(0u8..10)) {
            if let Some(n) = NhsNumber::from_nine_digits(first) {
                prop_assert_eq!(NhsNumber::parse(&n.formatted()).unwrap(), n.clone());
                prop_assert_eq!(NhsNumber::parse(&n.digits()).unwrap(), n);
            }
        }

        #[test]
        fn a_single_digit_change_is_always_caught(first in proptest::array::uniform9(0u8..10), pos in 0usize..10, delta in 1u8..10) {
            if let Some(n) = NhsNumber::from_nine_digits(first) {
                let mut digits: Vec<u8> = n.digits().bytes().map(|b| b - b'0').collect();
                digits[pos] = (digits[pos] + delta) % 10;
                let typed: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                prop_assert!(NhsNumber::parse(&typed).is_err());
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            let _ = NhsNumber::parse(&s);
        }
    }
}
