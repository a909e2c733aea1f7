//! The Italian fiscal code (codice fiscale) of a natural person, as typed by a citizen or carried
//! by the eID claim `https://attributes.eid.gov.it/fiscal_number` (`TINIT-` prefix).
//!
//! Only the form is checked: the layout (letters and digits where the Agenzia delle Entrate puts
//! them, with the omocodia letters standing for digits), the month letter, the day, and the check
//! character by the official odd/even tables. Whether a person holds the code is not knowable here.

use std::fmt;

/// A fiscal code in canonical form: 16 uppercase ASCII characters, check character verified.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiscalCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FiscalCodeError {
    #[error("a fiscal code has 16 characters, this one has {0}")]
    Length(usize),
    #[error("character {position} of the fiscal code is not valid there")]
    Layout { position: usize },
    #[error("the fiscal code's check character does not match")]
    Checksum,
}

/// The eID's form of the claim: ISO 3166 country and "TIN" prefix.
const EID_PREFIX: &str = "TINIT-";
/// Positions (0-based) that hold digits; omocodia may replace each with a letter of [`OMOCODIA`].
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
/// The letters standing for 0..=9 when two people would otherwise share a code.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Month letters, January to December.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// Values of the characters in odd positions (1st, 3rd, …) for A..=Z; digits 0..=9 take the
/// values of A..=J.
const ODD_VALUES: [u32; 26] =
    [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

impl FiscalCode {
    /// Reads a fiscal code: surrounding and inner spaces dropped, case ignored, an eID `TINIT-`
    /// prefix accepted.
    pub fn parse(input: &str) -> Result<FiscalCode, FiscalCodeError> {
        let mut code: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        if code.starts_with(EID_PREFIX) {
            code.drain(..EID_PREFIX.len());
        }
        let length = code.chars().count();
        if length != 16 {
            return Err(FiscalCodeError::Length(length));
        }
        let bytes = code.as_bytes();
        // 16 chars and 16 bytes: all ASCII from here on.
        if bytes.len() != 16 {
            let position = code.char_indices().position(|(_, c)| !c.is_ascii()).unwrap_or(0);
            return Err(FiscalCodeError::Layout { position });
        }
        for (position, &b) in bytes.iter().enumerate() {
            let fits = if DIGIT_POSITIONS.contains(&position) {
                b.is_ascii_digit() || OMOCODIA.contains(&b)
            } else {
                b.is_ascii_uppercase()
            };
            if !fits {
                return Err(FiscalCodeError::Layout { position });
            }
        }
        if !MONTHS.contains(&bytes[8]) {
            return Err(FiscalCodeError::Layout { position: 8 });
        }
        // Day of birth, plus 40 for women.
        let day = digit(bytes[9]) * 10 + digit(bytes[10]);
        if !(1..=31).contains(&day) && !(41..=71).contains(&day) {
            return Err(FiscalCodeError::Layout { position: 9 });
        }
        if check_character(&bytes[..15]) != bytes[15] {
            return Err(FiscalCodeError::Checksum);
        }
        Ok(FiscalCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs and screens: the first six letters (from the name, which the reader knows anyway)
    /// and the check character; birth date and place hidden.
    pub fn masked(&self) -> String {
        let bytes = self.0.as_bytes();
        format!("{}*********{}", &self.0[..6], bytes[15] as char)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Digit value of a character in a digit position, omocodia letters decoded.
fn digit(b: u8) -> u32 {
    match OMOCODIA.iter().position(|&l| l == b) {
        Some(value) => value as u32,
        None => u32::from(b.wrapping_sub(b'0')),
    }
}

/// The check character of the first 15 characters (uppercase ASCII letters and digits).
fn check_character(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            // A digit counts as the letter at the same index (0 = A).
            let index = if b.is_ascii_digit() { b - b'0' } else { b - b'A' };
            // Positions are counted from 1: index 0 is odd.
            if i % 2 == 0 { ODD_VALUES[usize::from(index)] } else { u32::from(index) }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

impl fmt::Display for FiscalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug shows the masked form, so that a code never lands whole in a log by `{:?}`.
impl fmt::Debug for FiscalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FiscalCode({})", self.masked())
    }
}

impl std::str::FromStr for FiscalCode {
    type Err = FiscalCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FiscalCode::parse(s)
    }
}

impl serde::Serialize for FiscalCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for FiscalCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        FiscalCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Checked by hand against the odd/even tables and with Python's `codicefiscale` package.
    const MARIO_ROSSI: &str = "RSSMRA85T10A562S";
    const WOMAN: &str = "BNCLRA90E41H501N";
    const OMOCODE: &str = "RSSMRA85T10A56NH";

    #[test]
    fn known_codes_are_accepted() {
        for code in [MARIO_ROSSI, WOMAN, OMOCODE] {
            assert_eq!(FiscalCode::parse(code).map(|c| c.to_string()), Ok(code.to_owned()), "{code}");
        }
    }

    #[test]
    fn spaces_case_and_eid_prefix_are_normalised() {
        let parsed = FiscalCode::parse("  rss mra 85t10 a562s ").unwrap();
        assert_eq!(parsed.as_str(), MARIO_ROSSI);
        assert_eq!(FiscalCode::parse("TINIT-RSSMRA85T10A562S").unwrap().as_str(), MARIO_ROSSI);
        assert_eq!(FiscalCode::parse("tinit-rssmra85t10a562s").unwrap().as_str(), MARIO_ROSSI);
    }

    #[test]
    fn wrong_length_is_refused() {
        assert_eq!(FiscalCode::parse(""), Err(FiscalCodeError::Length(0)));
        assert_eq!(FiscalCode::parse("RSSMRA85T10A562"), Err(FiscalCodeError::Length(15)));
        assert_eq!(FiscalCode::parse("RSSMRA85T10A562SX"), Err(FiscalCodeError::Length(17)));
        // 11 digits is a company's VAT-style code, not a person's.
        assert_eq!(FiscalCode::parse("01234567890"), Err(FiscalCodeError::Length(11)));
    }

    #[test]
    fn layout_is_checked() {
        // A digit where a surname letter goes.
        assert_eq!(FiscalCode::parse("R1SMRA85T10A562S"), Err(FiscalCodeError::Layout { position: 1 }));
        // A letter outside omocodia's where a digit goes.
        assert_eq!(FiscalCode::parse("RSSMRA8AT10A562S"), Err(FiscalCodeError::Layout { position: 7 }));
        // F is no month letter.
        assert_eq!(FiscalCode::parse("RSSMRA85F10A562S"), Err(FiscalCodeError::Layout { position: 8 }));
        // Day 32 and day 00 do not exist.
        assert_eq!(FiscalCode::parse("RSSMRA85T32A562S"), Err(FiscalCodeError::Layout { position: 9 }));
        assert_eq!(FiscalCode::parse("RSSMRA85T00A562S"), Err(FiscalCodeError::Layout { position: 9 }));
        // Non-ASCII letters never fit.
        assert!(matches!(FiscalCode::parse("RSSMRÀ85T10A562S"), Err(FiscalCodeError::Layout { .. })));
    }

    #[test]
    fn wrong_check_character_is_refused() {
        assert_eq!(FiscalCode::parse("RSSMRA85T10A562T"), Err(FiscalCodeError::Checksum));
        // One transposed digit.
        assert_eq!(FiscalCode::parse("RSSMRA58T10A562S"), Err(FiscalCodeError::Checksum));
    }

    #[test]
    fn masked_and_debug_hide_birth_data() {
        let code = FiscalCode::parse(MARIO_ROSSI).unwrap();
        assert_eq!(code.masked(), "RSSMRA*********S");
        assert_eq!(format!("{code:?}"), "FiscalCode(RSSMRA*********S)");
    }

    #[test]
    fn serde_is_a_validated_string() {
        let code: FiscalCode = serde_json::from_str("\"rssmra85t10a562s\"").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{MARIO_ROSSI}\""));
        assert!(serde_json::from_str::<FiscalCode>("\"RSSMRA85T10A562T\"").is_err());
    }

    fn valid_body() -> impl Strategy<Value = String> {
        (
            "[A-Z]{6}",
            "[0-9LMNPQRSTUV]{2}",
            proptest::sample::select(MONTHS.to_vec()),
            1u32..=31,
            any::<bool>(),
            "[A-Z]",
            "[0-9LMNPQRSTUV]{3}",
        )
            .prop_map(|(names, year, month, day, woman, place, number)| {
                let day = if woman { day + 40 } else { day };
                format!("{names}{year}{}{day:02}{place}{number}", month as char)
            })
    }

    proptest! {
        #[test]
        fn every_well_formed_code_round_trips(body in valid_body()) {
            let code = format!("{body}{}", check_character(body.as_bytes()) as char);
            let parsed = FiscalCode::parse(&code.to_lowercase()).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
        }

        #[test]
        fn any_other_check_character_is_refused(body in valid_body(), wrong in proptest::char::range('A', 'Z')) {
            let right = check_character(body.as_bytes()) as char;
            prop_assume!(wrong != right);
            prop_assert_eq!(FiscalCode::parse(&format!("{body}{wrong}")), Err(FiscalCodeError::Checksum));
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,24}") {
            let _ = FiscalCode::parse(&input);
        }
    }
}
