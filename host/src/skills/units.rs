//! Unit conversions: "how many miles is 5 kilometers" → "5 kilometers is about 3.107
//! miles.", "convert 10 pounds to kilograms", "what is 100 fahrenheit in celsius",
//! "6 feet in meters". Length, mass, volume and temperature; every factor is exact (the
//! mile is 1,609.344 m, the pound 0.45359237 kg), so the answer is as exact as
//! [`Number::spoken`] says it.

use super::numbers::{self, Number};
use super::{Reply, Request, Skill, SkillContext};

/// Converts between units of one kind.
#[derive(Debug)]
pub struct UnitsSkill;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Length,
    Mass,
    Volume,
    Temperature,
}

/// A unit: the words for it, its kind, and its size in the kind's base unit (metre, gram,
/// millilitre; for temperatures the scale, see [`to_kelvin`]) as `num / den`.
#[derive(Debug)]
struct Unit {
    singular: &'static str,
    plural: &'static str,
    /// Other words for it (abbreviations, spellings), each one word.
    other: &'static [&'static str],
    kind: Kind,
    num: i128,
    den: i128,
}

const fn unit(
    singular: &'static str,
    plural: &'static str,
    other: &'static [&'static str],
    kind: Kind,
    num: i128,
    den: i128,
) -> Unit {
    Unit {
        singular,
        plural,
        other,
        kind,
        num,
        den,
    }
}

const UNITS: &[Unit] = &[
    unit(
        "kilometer",
        "kilometers",
        &["km", "kilometre", "kilometres", "kms"],
        Kind::Length,
        1000,
        1,
    ),
    unit(
        "meter",
        "meters",
        &["m", "metre", "metres"],
        Kind::Length,
        1,
        1,
    ),
    unit(
        "centimeter",
        "centimeters",
        &["cm", "centimetre", "centimetres"],
        Kind::Length,
        1,
        100,
    ),
    unit(
        "millimeter",
        "millimeters",
        &["mm", "millimetre", "millimetres"],
        Kind::Length,
        1,
        1000,
    ),
    unit("mile", "miles", &["mi"], Kind::Length, 1_609_344, 1000),
    unit("yard", "yards", &["yd", "yds"], Kind::Length, 9144, 10_000),
    unit("foot", "feet", &["ft"], Kind::Length, 3048, 10_000),
    unit("inch", "inches", &[], Kind::Length, 254, 10_000),
    unit(
        "kilogram",
        "kilograms",
        &["kg", "kgs", "kilo", "kilos", "kilogramme", "kilogrammes"],
        Kind::Mass,
        1000,
        1,
    ),
    unit(
        "gram",
        "grams",
        &["g", "gramme", "grammes"],
        Kind::Mass,
        1,
        1,
    ),
    unit(
        "pound",
        "pounds",
        &["lb", "lbs"],
        Kind::Mass,
        45_359_237,
        100_000,
    ),
    unit(
        "ounce",
        "ounces",
        &["oz"],
        Kind::Mass,
        28_349_523_125,
        1_000_000_000,
    ),
    unit(
        "liter",
        "liters",
        &["l", "litre", "litres"],
        Kind::Volume,
        1000,
        1,
    ),
    unit(
        "milliliter",
        "milliliters",
        &["ml", "millilitre", "millilitres"],
        Kind::Volume,
        1,
        1,
    ),
    unit(
        "gallon",
        "gallons",
        &["gal"],
        Kind::Volume,
        3_785_411_784,
        1_000_000,
    ),
    unit(
        "degree celsius",
        "degrees celsius",
        &["celsius", "centigrade", "c"],
        Kind::Temperature,
        0,
        1,
    ),
    unit(
        "degree fahrenheit",
        "degrees fahrenheit",
        &["fahrenheit", "f"],
        Kind::Temperature,
        1,
        1,
    ),
    unit(
        "kelvin",
        "kelvin",
        &["kelvins", "k"],
        Kind::Temperature,
        2,
        1,
    ),
];

/// Words before a conversion that ask for it.
const ASKING: &[&[&str]] = &[
    &["what", "is"],
    &["what", "are"],
    &["how", "much", "is"],
    &["how", "much", "are"],
    &["convert"],
];

/// Between the amount and the unit asked for.
const INTO: &[&str] = &["in", "to", "into", "as"];

impl Skill for UnitsSkill {
    fn name(&self) -> &'static str {
        "units"
    }

    fn answer(&self, request: &Request, _ctx: &SkillContext<'_>) -> Option<Reply> {
        let (amount, from, to) = conversion(request.words())?;
        let converted = convert(amount, from, to)?;
        let name = |u: &Unit, n: Number| {
            if n == Number::int(1) {
                u.singular
            } else {
                u.plural
            }
        };
        Some(Reply::say(format!(
            "{} {} is {} {}.",
            amount.spoken(),
            name(from, amount),
            converted.spoken(),
            name(to, converted)
        )))
    }
}

/// The amount, the unit it is in and the unit asked for: "how many U2 (is|are [in]) N U1"
/// or "[what is | convert] N U1 (in|to|into) U2"; `None` unless the request is exactly one
/// of those and both units are of one kind.
fn conversion(words: &[String]) -> Option<(Number, &'static Unit, &'static Unit)> {
    let (amount, from, to) = if words.first().map(String::as_str) == Some("how")
        && matches!(words.get(1).map(String::as_str), Some("many" | "much"))
    {
        let (to, used) = unit_at(&words[2..])?;
        let rest = &words[2 + used..];
        // "is", "are", "in", "are in", "are there in".
        let joins = rest
            .iter()
            .take_while(|w| matches!(w.as_str(), "is" | "are" | "there" | "in"))
            .count();
        if joins == 0 {
            return None;
        }
        let rest = &rest[joins..];
        let (amount, from) = amount_at(rest)?;
        (amount, from, to)
    } else {
        let start = ASKING
            .iter()
            .find(|p| words.len() > p.len() && words.iter().zip(p.iter()).all(|(w, p)| w == p))
            .map_or(0, |p| p.len());
        let rest = &words[start..];
        let (amount, from, used) = amount_and_unit(rest)?;
        let rest = &rest[used..];
        if !INTO.contains(&rest.first()?.as_str()) {
            return None;
        }
        let (to, used) = unit_at(&rest[1..])?;
        if 1 + used != rest.len() {
            return None;
        }
        (amount, from, to)
    };
    (from.kind == to.kind && !std::ptr::eq(from, to)).then_some((amount, from, to))
}

/// "N U" that is the whole of `words`.
fn amount_at(words: &[String]) -> Option<(Number, &'static Unit)> {
    let (amount, unit, used) = amount_and_unit(words)?;
    (used == words.len()).then_some((amount, unit))
}

/// "N U" at the start of `words` ("minus 40 degrees fahrenheit"), and the words it took.
fn amount_and_unit(words: &[String]) -> Option<(Number, &'static Unit, usize)> {
    let negative = matches!(
        words.first().map(String::as_str),
        Some("minus" | "negative")
    );
    let skip = usize::from(negative);
    let (mut amount, used) = numbers::parse(&words[skip..])?;
    if negative {
        amount = Number::ZERO.checked_sub(amount)?;
    }
    let (unit, taken) = unit_at(&words[skip + used..])?;
    Some((amount, unit, skip + used + taken))
}

/// The unit at the start of `words` ("degrees celsius", "km") and the words it took.
fn unit_at(words: &[String]) -> Option<(&'static Unit, usize)> {
    let first = words.first()?.as_str();
    // "degrees celsius", "degree fahrenheit": the scale after "degrees".
    if matches!(first, "degree" | "degrees")
        && let Some((u, 1)) = unit_at(&words[1..])
        && u.kind == Kind::Temperature
    {
        return Some((u, 2));
    }
    UNITS
        .iter()
        .find(|u| u.singular == first || u.plural == first || u.other.contains(&first))
        .map(|u| (u, 1))
}

/// `amount` of `from` in `to` (units of one kind).
fn convert(amount: Number, from: &Unit, to: &Unit) -> Option<Number> {
    if from.kind == Kind::Temperature {
        return from_kelvin(to_kelvin(amount, from)?, to);
    }
    amount
        .checked_mul(Number::ratio(from.num, from.den)?)?
        .checked_div(Number::ratio(to.num, to.den)?)
}

/// A temperature on `scale` (its `num`: 0 Celsius, 1 Fahrenheit, 2 Kelvin) in kelvin.
fn to_kelvin(t: Number, scale: &Unit) -> Option<Number> {
    let c_to_k = Number::ratio(27315, 100)?;
    match scale.num {
        0 => t.checked_add(c_to_k),
        1 => t
            .checked_sub(Number::int(32))?
            .checked_mul(Number::ratio(5, 9)?)?
            .checked_add(c_to_k),
        _ => Some(t),
    }
}

/// A temperature in kelvin on `scale`.
fn from_kelvin(k: Number, scale: &Unit) -> Option<Number> {
    let c = k.checked_sub(Number::ratio(27315, 100)?)?;
    match scale.num {
        0 => Some(c),
        1 => c
            .checked_mul(Number::ratio(9, 5)?)?
            .checked_add(Number::int(32)),
        _ => Some(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::Timers;

    fn say(heard: &str) -> Option<String> {
        let timers = Timers::default();
        let ctx = SkillContext::now(&timers);
        UnitsSkill
            .answer(&Request::new(heard), &ctx)
            .map(|r| r.text)
    }

    #[test]
    fn lengths_masses_and_volumes_either_way_round() {
        for (heard, said) in [
            (
                "How many miles is 5 kilometers?",
                "5 kilometers is about 3.107 miles.",
            ),
            (
                "Convert 10 pounds to kilograms.",
                "10 pounds is about 4.536 kilograms.",
            ),
            ("What is one mile in meters?", "1 mile is 1609.344 meters."),
            ("6 feet in centimeters", "6 feet is 182.88 centimeters."),
            (
                "how many liters are in 2 gallons",
                "2 gallons is about 7.571 liters.",
            ),
            ("what is 1.5 kilos in grams", "1.5 kilograms is 1500 grams."),
        ] {
            assert_eq!(say(heard).as_deref(), Some(said), "{heard}");
        }
    }

    #[test]
    fn temperatures() {
        for (heard, said) in [
            (
                "What is 100 degrees fahrenheit in celsius?",
                "100 degrees fahrenheit is about 37.778 degrees celsius.",
            ),
            (
                "convert 20 celsius to fahrenheit",
                "20 degrees celsius is 68 degrees fahrenheit.",
            ),
            (
                "minus 40 degrees celsius in fahrenheit",
                "minus 40 degrees celsius is minus 40 degrees fahrenheit.",
            ),
            (
                "0 kelvin in celsius",
                "0 kelvin is minus 273.15 degrees celsius.",
            ),
        ] {
            assert_eq!(say(heard).as_deref(), Some(said), "{heard}");
        }
    }

    #[test]
    fn anything_else_goes_on_to_the_model() {
        for heard in [
            "How many miles is it to Paris?",
            "5 kilometers in pounds",
            "how many feet does a spider have",
            "what is 5 kilometers",
            "convert 5 kilometers to kilometers",
            "5 kilometers in miles please tell me more about running",
        ] {
            assert_eq!(say(heard), None, "{heard}");
        }
    }
}
