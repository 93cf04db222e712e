//! Spoken numbers: what stt writes for a number — digits ("15", "1,200", "3.5") or words
//! ("twelve", "twenty one", "one hundred and five", "a thousand", "one and a half",
//! "three point five", "half") — read as an exact value, and values written for speaking.
//!
//! Values are exact fractions ([`Number`]), so integers stay integers and 100 ÷ 8 is 12.5,
//! never 12.499999.

use std::cmp::Ordering;

/// An exact rational value, kept in lowest terms with a positive denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    num: i128,
    den: i128,
}

/// Digits in a number written with digits, at most (so that sums and products of two of
/// them stay far inside `i128`).
const MAX_DIGITS: usize = 18;
/// Decimal places a spoken answer has at most.
const PLACES: u32 = 3;

impl Number {
    pub const ZERO: Number = Number { num: 0, den: 1 };
    pub const HALF: Number = Number { num: 1, den: 2 };

    pub const fn int(n: i128) -> Number {
        Number { num: n, den: 1 }
    }

    /// `num / den`; `None` when `den` is 0.
    pub fn ratio(num: i128, den: i128) -> Option<Number> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Number {
            num: sign * num / g,
            den: sign * den / g,
        })
    }

    pub fn is_zero(self) -> bool {
        self.num == 0
    }

    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// The sum; `None` on overflow.
    pub fn checked_add(self, o: Number) -> Option<Number> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Number::ratio(num, self.den.checked_mul(o.den)?)
    }

    /// The difference; `None` on overflow.
    pub fn checked_sub(self, o: Number) -> Option<Number> {
        self.checked_add(Number {
            num: o.num.checked_neg()?,
            den: o.den,
        })
    }

    /// The product; `None` on overflow.
    pub fn checked_mul(self, o: Number) -> Option<Number> {
        Number::ratio(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    /// The quotient; `None` when `o` is 0 or on overflow.
    pub fn checked_div(self, o: Number) -> Option<Number> {
        Number::ratio(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    /// Rounded to the nearest integer (halves away from zero).
    pub fn round(self) -> i128 {
        let twice = self.num.saturating_mul(2);
        let q = (twice.abs() + self.den) / (2 * self.den);
        if self.num < 0 { -q } else { q }
    }

    /// For speaking, in digits: "84", "12.5", "minus 4", "about 0.333" (at most three
    /// decimals; "about" when that is not exact).
    pub fn spoken(self) -> String {
        let (text, exact) = self.decimal();
        if exact { text } else { format!("about {text}") }
    }

    /// In digits with at most [`PLACES`] decimals, and whether that is exact.
    fn decimal(self) -> (String, bool) {
        let scale = 10i128.pow(PLACES);
        let scaled = self.num.saturating_mul(scale);
        let exact = scaled % self.den == 0;
        let rounded = Number {
            num: scaled,
            den: self.den,
        }
        .round();
        let (whole, frac) = (rounded.abs() / scale, rounded.abs() % scale);
        let mut text = whole.to_string();
        if frac != 0 {
            let digits = format!("{frac:0width$}", width = PLACES as usize);
            text.push('.');
            text.push_str(digits.trim_end_matches('0'));
        }
        if rounded < 0 {
            text = format!("minus {text}");
        }
        (text, exact)
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        // Both denominators are positive; values this module makes never overflow here.
        (self.num.saturating_mul(other.den)).cmp(&other.num.saturating_mul(self.den))
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What one word of a number is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Word {
    /// zero to nine.
    Unit(i128),
    /// ten to nineteen.
    Teen(i128),
    /// twenty, thirty, … ninety.
    Tens(i128),
    Hundred,
    /// thousand, million, billion.
    Scale(i128),
    Dozen,
}

/// The words for 0 to 19, in order.
const SMALL: &str = "zero one two three four five six seven eight nine ten eleven twelve thirteen \
                     fourteen fifteen sixteen seventeen eighteen nineteen";
/// The words for 20, 30, … 90 at their number of tens ("-" holds the places of 0 and 10).
const TENS: &str = "- - twenty thirty forty fifty sixty seventy eighty ninety";

fn small(n: u64) -> &'static str {
    SMALL.split_whitespace().nth(n as usize).unwrap_or_default()
}

fn tens(n: u64) -> &'static str {
    TENS.split_whitespace().nth(n as usize).unwrap_or_default()
}

fn word(w: &str) -> Option<Word> {
    if let Some(i) = SMALL.split_whitespace().position(|x| x == w) {
        let i = i as i128;
        return Some(if i < 10 { Word::Unit(i) } else { Word::Teen(i) });
    }
    if let Some(i) = TENS.split_whitespace().position(|x| x == w && x != "-") {
        return Some(Word::Tens(10 * i as i128));
    }
    Some(match w {
        "hundred" => Word::Hundred,
        "thousand" => Word::Scale(1_000),
        "million" => Word::Scale(1_000_000),
        "billion" => Word::Scale(1_000_000_000),
        "dozen" => Word::Dozen,
        _ => return None,
    })
}

/// A number written with digits: "15", "1,200", "3.5", "1,200.75".
pub fn digits(w: &str) -> Option<Number> {
    let plain: String = w.chars().filter(|c| *c != ',').collect();
    let (whole, frac) = plain.split_once('.').unwrap_or((&plain, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(frac)
        || whole.len() + frac.len() > MAX_DIGITS
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let frac_value: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let den = 10i128.pow(frac.len() as u32);
    Number::ratio(whole * den + frac_value, den)
}

/// Where a word-number stands: what may come next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Last {
    Start,
    /// "a" / "an" before a scale word.
    A,
    Unit,
    Teen,
    Tens,
    Hundred,
    Scale,
    And,
}

/// The number at the start of `words` and how many words it took; `None` when `words`
/// does not start with one. The longest reading wins: "one hundred and five minutes" is
/// 105 (four words), "one and a half" is 1.5; "twelve seven" is 12 (one word).
pub fn parse(words: &[String]) -> Option<(Number, usize)> {
    if let Some(found) = fraction(words) {
        return Some(found);
    }
    let (mut value, mut used) = whole(words)?;
    // "three point one four"
    if words.get(used).map(String::as_str) == Some("point") {
        let mut place = Number::int(1);
        let mut decimals = 0;
        while let Some(Word::Unit(d)) = words.get(used + 1 + decimals).and_then(|w| word(w)) {
            place = place.checked_div(Number::int(10))?;
            value = value.checked_add(Number::int(d).checked_mul(place)?)?;
            decimals += 1;
        }
        if decimals > 0 {
            used += 1 + decimals;
        }
    }
    // "one and a half", "two and three quarters"
    if words.get(used).map(String::as_str) == Some("and")
        && let Some((part, n)) = fraction(&words[used + 1..])
    {
        value = value.checked_add(part)?;
        used += 1 + n;
    }
    Some((value, used))
}

/// A fraction on its own: "half", "a half", "one half", "a quarter", "three quarters".
fn fraction(words: &[String]) -> Option<(Number, usize)> {
    let w = |i: usize| words.get(i).map(String::as_str);
    let (count, at) = match w(0) {
        Some("a" | "an") => (1, 1),
        Some(first) => match word(first) {
            Some(Word::Unit(n)) if n > 0 => (n, 1),
            _ => (1, 0),
        },
        None => return None,
    };
    let value = match (w(at), count) {
        (Some("half"), 1) => Number::HALF,
        (Some("quarter"), 1) => Number::ratio(1, 4)?,
        (Some("quarters"), n) if n > 1 => Number::ratio(n, 4)?,
        (Some("third"), 1) => Number::ratio(1, 3)?,
        (Some("thirds"), n) if n > 1 => Number::ratio(n, 3)?,
        _ => return None,
    };
    Some((value, at + 1))
}

/// A whole number (or digits) at the start of `words`.
fn whole(words: &[String]) -> Option<(Number, usize)> {
    let first = words.first()?;
    if let Some(n) = digits(first) {
        // "5 hundred", "1.5 million", "2 dozen"
        let scale = match words.get(1).and_then(|w| word(w)) {
            Some(Word::Hundred) => Some(100),
            Some(Word::Scale(s)) => Some(s),
            Some(Word::Dozen) => Some(12),
            _ => None,
        };
        return Some(match scale {
            Some(s) => (n.checked_mul(Number::int(s))?, 2),
            None => (n, 1),
        });
    }
    let (mut total, mut group) = (0i128, 0i128);
    let mut last = Last::Start;
    let mut last_scale = i128::MAX;
    let mut used = 0;
    // Words consumed up to the last point where the number was complete.
    let mut complete = 0;
    while let Some(w) = words.get(used) {
        let next = words.get(used + 1).and_then(|w| word(w));
        let after_group = matches!(last, Last::Start | Last::Hundred | Last::Scale | Last::And);
        match (w.as_str(), word(w)) {
            ("a" | "an", _)
                if last == Last::Start
                    && matches!(next, Some(Word::Hundred | Word::Scale(_) | Word::Dozen)) =>
            {
                group = 1;
                last = Last::A;
            }
            ("and", _)
                if matches!(last, Last::Hundred | Last::Scale)
                    && matches!(next, Some(Word::Unit(1..) | Word::Teen(_) | Word::Tens(_))) =>
            {
                last = Last::And;
            }
            (_, Some(Word::Unit(0))) if last == Last::Start => {
                return Some((Number::ZERO, 1));
            }
            (_, Some(Word::Unit(n)))
                if n > 0 && (after_group || (last == Last::Tens && group % 10 == 0)) =>
            {
                group += n;
                last = Last::Unit;
            }
            (_, Some(Word::Teen(n))) if after_group => {
                group += n;
                last = Last::Teen;
            }
            (_, Some(Word::Tens(n))) if after_group && group % 100 == 0 => {
                group += n;
                last = Last::Tens;
            }
            (_, Some(Word::Hundred))
                if matches!(last, Last::Unit | Last::Teen | Last::A) && group < 100 =>
            {
                group *= 100;
                last = Last::Hundred;
            }
            (_, Some(Word::Scale(s)))
                if matches!(
                    last,
                    Last::Unit | Last::Teen | Last::Tens | Last::Hundred | Last::A
                ) && s < last_scale =>
            {
                total += group * s;
                group = 0;
                last_scale = s;
                last = Last::Scale;
            }
            (_, Some(Word::Dozen))
                if matches!(last, Last::Unit | Last::Teen | Last::Tens | Last::A) =>
            {
                group *= 12;
                used += 1;
                complete = used;
                break;
            }
            _ => break,
        }
        used += 1;
        if !matches!(last, Last::A | Last::And) {
            complete = used;
        }
    }
    (complete > 0).then(|| (Number::int(total + group), complete))
}

/// `n` in words, for speaking counts: "two", "twenty one", "one hundred and five".
pub fn to_words(n: u64) -> String {
    fn below_thousand(n: u64, out: &mut Vec<String>) {
        let (hundreds, rest) = (n / 100, n % 100);
        if hundreds > 0 {
            out.push(format!("{} hundred", small(hundreds)));
            if rest > 0 {
                out.push("and".to_owned());
            }
        }
        if rest >= 20 {
            out.push(tens(rest / 10).to_owned());
            if rest % 10 > 0 {
                out.push(small(rest % 10).to_owned());
            }
        } else if rest > 0 {
            out.push(small(rest).to_owned());
        }
    }
    if n == 0 {
        return small(0).to_owned();
    }
    let mut out = Vec::new();
    let mut rest = n;
    for (scale, name) in [
        (1_000_000_000_000_000_000, "quintillion"),
        (1_000_000_000_000_000, "quadrillion"),
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ] {
        if rest >= scale {
            below_thousand(rest / scale, &mut out);
            out.push(name.to_owned());
            rest %= scale;
        }
    }
    if rest > 0 && rest < 100 && !out.is_empty() {
        out.push("and".to_owned());
    }
    below_thousand(rest, &mut out);
    out.join(" ")
}

#[cfg(test)]
#[path = "numbers_tests.rs"]
mod tests;
