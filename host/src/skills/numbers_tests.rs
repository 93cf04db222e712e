//! Tests of spoken numbers (numbers.rs).
use super::*;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn value(s: &str) -> Option<(Number, usize)> {
    parse(&words(s))
}

fn n(num: i128, den: i128) -> Number {
    Number::ratio(num, den).unwrap()
}

#[test]
fn digits_as_whisper_writes_them() {
    assert_eq!(value("15"), Some((Number::int(15), 1)));
    assert_eq!(value("1,200 seconds"), Some((Number::int(1200), 1)));
    assert_eq!(value("3.5"), Some((n(7, 2), 1)));
    assert_eq!(value("1,200.75"), Some((n(480_300, 400), 1)));
    assert_eq!(value("0.25"), Some((n(1, 4), 1)));
    assert_eq!(value("5 hundred"), Some((Number::int(500), 2)));
    assert_eq!(value("1.5 million"), Some((Number::int(1_500_000), 2)));
    assert_eq!(value("2 and a half"), Some((n(5, 2), 4)));
    assert_eq!(value("1.2.3"), None);
    assert_eq!(value("12abc"), None);
    assert_eq!(value("1234567890123456789012"), None, "too many digits");
}

#[test]
fn words_to_values() {
    for (text, want, used) in [
        ("zero", 0, 1),
        ("seven", 7, 1),
        ("twelve", 12, 1),
        ("twenty", 20, 1),
        ("twenty one", 21, 2),
        ("ninety nine bottles", 99, 2),
        ("one hundred", 100, 2),
        ("a hundred", 100, 2),
        ("one hundred and five", 105, 4),
        ("one hundred five", 105, 3),
        ("nine hundred and ninety nine", 999, 5),
        ("nineteen hundred", 1900, 2),
        ("a thousand", 1000, 2),
        ("two thousand and twenty six", 2026, 5),
        ("one million two hundred thousand", 1_200_000, 5),
        ("three hundred thousand", 300_000, 3),
        ("a dozen", 12, 2),
        ("two dozen", 24, 2),
    ] {
        assert_eq!(value(text), Some((Number::int(want), used)), "{text}");
    }
}

#[test]
fn a_number_ends_where_the_words_stop_making_one() {
    // Two numbers in a row are two numbers, not their sum.
    assert_eq!(value("twelve seven"), Some((Number::int(12), 1)));
    assert_eq!(value("seven twelve"), Some((Number::int(7), 1)));
    assert_eq!(value("twenty twenty"), Some((Number::int(20), 1)));
    assert_eq!(value("one two"), Some((Number::int(1), 1)));
    assert_eq!(value("zero one"), Some((Number::int(0), 1)));
    // "and" joins only what follows a hundred or a thousand.
    assert_eq!(value("twelve and seven"), Some((Number::int(12), 1)));
    assert_eq!(value("one hundred and"), Some((Number::int(100), 2)));
    assert_eq!(value("a minute"), None);
    assert_eq!(value("times seven"), None);
    assert_eq!(value(""), None);
    assert_eq!(value("thousand"), None);
    assert_eq!(
        value("one thousand one thousand"),
        Some((Number::int(1001), 3))
    );
}

#[test]
fn fractions_and_decimals_in_words() {
    assert_eq!(value("half"), Some((Number::HALF, 1)));
    assert_eq!(value("half an hour"), Some((Number::HALF, 1)));
    assert_eq!(value("a half"), Some((Number::HALF, 2)));
    assert_eq!(value("a quarter"), Some((n(1, 4), 2)));
    assert_eq!(value("three quarters"), Some((n(3, 4), 2)));
    assert_eq!(value("one and a half minutes"), Some((n(3, 2), 4)));
    assert_eq!(value("two and a quarter"), Some((n(9, 4), 4)));
    assert_eq!(value("three point five"), Some((n(7, 2), 3)));
    assert_eq!(value("three point one four"), Some((n(314, 100), 4)));
    assert_eq!(value("three point"), Some((Number::int(3), 1)));
}

#[test]
fn exact_arithmetic() {
    let a = Number::int(100);
    assert_eq!(a.checked_div(Number::int(8)), Some(n(25, 2)));
    assert_eq!(a.checked_div(Number::ZERO), None);
    assert_eq!(n(1, 3).checked_add(n(1, 6)), Some(Number::HALF));
    assert_eq!(
        Number::int(5).checked_sub(Number::int(9)),
        Some(Number::int(-4))
    );
    assert_eq!(
        n(1, 10).checked_add(n(2, 10)),
        Some(n(3, 10)),
        "no float noise"
    );
    assert_eq!(Number::int(i128::MAX).checked_add(Number::int(1)), None);
    assert_eq!(Number::int(i128::MAX).checked_mul(Number::int(2)), None);
    assert!(Number::int(3) > n(5, 2));
    assert_eq!(n(5, 2).round(), 3);
    assert_eq!(n(-5, 2).round(), -3);
}

#[test]
fn spoken_values() {
    assert_eq!(Number::int(84).spoken(), "84");
    assert_eq!(n(25, 2).spoken(), "12.5");
    assert_eq!(Number::int(-4).spoken(), "minus 4");
    assert_eq!(n(1, 3).spoken(), "about 0.333");
    assert_eq!(n(2, 3).spoken(), "about 0.667");
    assert_eq!(n(-1, 8).spoken(), "minus 0.125");
    assert_eq!(n(1, 1600).spoken(), "about 0.001");
    assert_eq!(n(3, 10).spoken(), "0.3");
}

#[test]
fn values_in_words() {
    assert_eq!(to_words(0), "zero");
    assert_eq!(to_words(2), "two");
    assert_eq!(to_words(21), "twenty one");
    assert_eq!(to_words(105), "one hundred and five");
    assert_eq!(to_words(2026), "two thousand and twenty six");
    assert_eq!(to_words(1_200_000), "one million two hundred thousand");
    // Words back to the value.
    for v in [7, 19, 40, 99, 100, 101, 999, 1000, 1001, 12_345, 700_019] {
        let text = to_words(v);
        assert_eq!(
            parse(&words(&text)).map(|(n, _)| n),
            Some(Number::int(i128::from(v))),
            "{text}"
        );
    }
}
