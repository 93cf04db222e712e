//! Arithmetic on spoken numbers: "what is twelve times seven" → "12 times 7 is 84.",
//! "what's 100 divided by 8" → "100 divided by 8 is 12.5.", "15 plus 27", "subtract 3 from
//! 10", "15 percent of 80". Exact: integers stay integers, other results have at most three
//! decimals ("about 33.333" when that is rounded). × and ÷ bind before + and −.

use super::numbers::{self, Number};
use super::{Reply, Request, Skill, SkillContext};

/// + − × ÷ and "percent of".
#[derive(Debug)]
pub struct ArithmeticSkill;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// `a percent of b`: a / 100 × b.
    PercentOf,
}

impl Op {
    fn spoken(self) -> &'static str {
        match self {
            Op::Add => "plus",
            Op::Sub => "minus",
            Op::Mul => "times",
            Op::Div => "divided by",
            Op::PercentOf => "percent of",
        }
    }

    fn binds_first(self) -> bool {
        matches!(self, Op::Mul | Op::Div | Op::PercentOf)
    }
}

/// The operator words, longest first.
const OPS: &[(&[&str], Op)] = &[
    (&["multiplied", "by"], Op::Mul),
    (&["multiply", "by"], Op::Mul),
    (&["divided", "by"], Op::Div),
    (&["divide", "by"], Op::Div),
    (&["percent", "of"], Op::PercentOf),
    (&["%", "of"], Op::PercentOf),
    (&["take", "away"], Op::Sub),
    (&["plus"], Op::Add),
    (&["+"], Op::Add),
    (&["minus"], Op::Sub),
    (&["-"], Op::Sub),
    (&["times"], Op::Mul),
    (&["x"], Op::Mul),
    (&["*"], Op::Mul),
    (&["×"], Op::Mul),
    (&["over"], Op::Div),
    (&["/"], Op::Div),
    (&["÷"], Op::Div),
];

/// Words before a sum that ask for it.
const ASKING: &[&[&str]] = &[
    &["what", "is", "the", "answer", "to"],
    &["what", "is", "the", "result", "of"],
    &["what", "would", "be"],
    &["what", "is"],
    &["what", "are"],
    &["what", "does"],
    &["what", "do"],
    &["how", "much", "is"],
    &["how", "much", "are"],
    &["calculate"],
    &["compute"],
    &["work", "out"],
    &["solve"],
];

/// Words after a sum that ask for it.
const ASKED: &[&[&str]] = &[&["equal"], &["equals"], &["make"], &["is"], &["="]];

/// An expression read from words: operands and the operators between them.
#[derive(Debug, Clone, PartialEq)]
struct Expr {
    operands: Vec<Number>,
    ops: Vec<Op>,
}

impl Skill for ArithmeticSkill {
    fn name(&self) -> &'static str {
        "arithmetic"
    }

    fn answer(&self, request: &Request, _ctx: &SkillContext<'_>) -> Option<Reply> {
        let expr = parse(request.words())?;
        let text = match expr.value() {
            Ok(v) => format!("{} is {}.", expr.spoken(), v.spoken()),
            Err(Failure::DivideByZero) => {
                "That has no answer: you can't divide by zero.".to_owned()
            }
            Err(Failure::TooBig) => "Sorry, that number is too big for me.".to_owned(),
        };
        Some(Reply::say(text))
    }
}

#[derive(Debug, PartialEq)]
enum Failure {
    DivideByZero,
    TooBig,
}

impl Expr {
    /// Its value, × ÷ before + −, left to right.
    fn value(&self) -> Result<Number, Failure> {
        let apply = |a: Number, op: Op, b: Number| -> Result<Number, Failure> {
            if op == Op::Div && b.is_zero() {
                return Err(Failure::DivideByZero);
            }
            match op {
                Op::Add => a.checked_add(b),
                Op::Sub => a.checked_sub(b),
                Op::Mul => a.checked_mul(b),
                Op::Div => a.checked_div(b),
                Op::PercentOf => a
                    .checked_mul(b)
                    .and_then(|p| p.checked_div(Number::int(100))),
            }
            .ok_or(Failure::TooBig)
        };
        // First × ÷: terms joined by + and −.
        let mut terms = vec![self.operands[0]];
        let mut joins = Vec::new();
        for (op, &b) in self.ops.iter().zip(&self.operands[1..]) {
            if op.binds_first() {
                let a = terms.pop().ok_or(Failure::TooBig)?;
                terms.push(apply(a, *op, b)?);
            } else {
                terms.push(b);
                joins.push(*op);
            }
        }
        let mut total = terms[0];
        for (op, &b) in joins.iter().zip(&terms[1..]) {
            total = apply(total, *op, b)?;
        }
        Ok(total)
    }

    /// "12 times 7".
    fn spoken(&self) -> String {
        let mut out = self.operands[0].spoken();
        for (op, b) in self.ops.iter().zip(&self.operands[1..]) {
            out.push(' ');
            out.push_str(op.spoken());
            out.push(' ');
            out.push_str(&b.spoken());
        }
        out
    }
}

/// `phrase` at the start of `words`.
fn starts(words: &[String], phrase: &[&str]) -> bool {
    words.len() >= phrase.len() && words.iter().zip(phrase).all(|(w, p)| w == p)
}

/// The whole request as a sum, or `None`.
fn parse(words: &[String]) -> Option<Expr> {
    let mut words = words;
    if let Some(ask) = ASKING.iter().find(|a| starts(words, a)) {
        words = &words[ask.len()..];
    }
    if let Some(asked) = ASKED
        .iter()
        .find(|a| words.len() > a.len() && starts(&words[words.len() - a.len()..], a))
    {
        words = &words[..words.len() - asked.len()];
    }
    verb_form(words).or_else(|| infix(words))
}

/// One operand: a number, perhaps negative ("minus 5", "negative 5").
fn operand(words: &[String]) -> Option<(Number, usize)> {
    match words.first().map(String::as_str) {
        Some("minus" | "-" | "negative") => {
            let (n, used) = numbers::parse(&words[1..])?;
            Some((Number::ZERO.checked_sub(n)?, used + 1))
        }
        _ => numbers::parse(words),
    }
}

/// "a plus b times c …": at least one operator, every word used.
fn infix(words: &[String]) -> Option<Expr> {
    let (first, mut at) = operand(words)?;
    let mut expr = Expr {
        operands: vec![first],
        ops: Vec::new(),
    };
    while at < words.len() {
        let (phrase, op) = OPS.iter().find(|(p, _)| starts(&words[at..], p))?;
        at += phrase.len();
        let (b, used) = operand(&words[at..])?;
        at += used;
        expr.ops.push(*op);
        expr.operands.push(b);
    }
    (!expr.ops.is_empty()).then_some(expr)
}

/// "add a and b", "add a to b", "subtract a from b", "multiply a by b", "divide a by b".
fn verb_form(words: &[String]) -> Option<Expr> {
    let (verb, rest) = words.split_first()?;
    let (op, joins, swap): (Op, &[&str], bool) = match verb.as_str() {
        "add" => (Op::Add, &["and", "to", "plus"], false),
        "subtract" => (Op::Sub, &["from"], true),
        "multiply" => (Op::Mul, &["by", "and", "times"], false),
        "divide" => (Op::Div, &["by"], false),
        _ => return None,
    };
    let (a, used) = operand(rest)?;
    let join = rest.get(used)?;
    if !joins.contains(&join.as_str()) {
        return None;
    }
    let (b, used_b) = operand(&rest[used + 1..])?;
    if used + 1 + used_b != rest.len() {
        return None;
    }
    let operands = if swap { vec![b, a] } else { vec![a, b] };
    Some(Expr {
        operands,
        ops: vec![op],
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::skills::Timers;
    use crate::skills::tests::ask;

    fn reply(heard: &str) -> Option<String> {
        ask(heard, &Timers::default(), Instant::now())
            .filter(|m| m.skill == "arithmetic")
            .map(|m| m.reply.text)
    }

    #[test]
    fn words_and_digits() {
        for (q, want) in [
            ("What is twelve times seven?", "12 times 7 is 84."),
            ("What is 12 times 7?", "12 times 7 is 84."),
            ("15 plus 27", "15 plus 27 is 42."),
            ("What's 100 divided by 8?", "100 divided by 8 is 12.5."),
            ("What is 5 minus 9?", "5 minus 9 is minus 4."),
            ("How much is six multiplied by seven?", "6 times 7 is 42."),
            ("What is 10 over 4?", "10 divided by 4 is 2.5."),
            ("What is 12 x 7?", "12 times 7 is 84."),
            ("What is 12×7?", "12 times 7 is 84."),
            ("What is 15+27?", "15 plus 27 is 42."),
            ("100/8", "100 divided by 8 is 12.5."),
            ("What's 1,200 plus 3.5?", "1200 plus 3.5 is 1203.5."),
            (
                "What is one hundred and five minus twenty one?",
                "105 minus 21 is 84.",
            ),
            ("What is 0.1 plus 0.2?", "0.1 plus 0.2 is 0.3."),
            (
                "What is 100 divided by 3?",
                "100 divided by 3 is about 33.333.",
            ),
            ("What is minus 5 plus 3?", "minus 5 plus 3 is minus 2."),
            ("What's 15 percent of 80?", "15 percent of 80 is 12."),
            ("What is 2 plus 3 times 4?", "2 plus 3 times 4 is 14."),
            ("What is 20 minus 2 minus 3?", "20 minus 2 minus 3 is 15."),
            ("What does 7 times 8 equal?", "7 times 8 is 56."),
            ("Calculate 3 times 4, please.", "3 times 4 is 12."),
            ("Add 5 and 3.", "5 plus 3 is 8."),
            ("Subtract 3 from 10.", "10 minus 3 is 7."),
            ("Multiply 6 by 7.", "6 times 7 is 42."),
            ("Divide 10 by 4.", "10 divided by 4 is 2.5."),
            (
                "What is a thousand times a thousand?",
                "1000 times 1000 is 1000000.",
            ),
        ] {
            assert_eq!(reply(q).as_deref(), Some(want), "{q}");
        }
    }

    #[test]
    fn division_by_zero_is_answered_politely() {
        for q in [
            "What is 5 divided by 0?",
            "What is 5 divided by zero?",
            "1/0",
        ] {
            assert_eq!(
                reply(q).as_deref(),
                Some("That has no answer: you can't divide by zero."),
                "{q}"
            );
        }
        // 0 ÷ 5 is fine.
        assert_eq!(
            reply("What is 0 divided by 5?").as_deref(),
            Some("0 divided by 5 is 0.")
        );
    }

    #[test]
    fn numbers_too_big_for_exact_arithmetic() {
        let big = "999999999999999999";
        assert_eq!(
            reply(&format!("{big} times {big} times {big}")).as_deref(),
            Some("Sorry, that number is too big for me.")
        );
    }

    #[test]
    fn not_a_sum() {
        for q in [
            "What is 12?",
            "What is twelve?",
            "What is the capital of France?",
            "What is 5 minutes times 3?",
            "Twelve and seven.",
            "What is 12 times?",
            "Times 7",
            "Add salt to the soup.",
            "What is 1 plus 1 plus the moon?",
        ] {
            assert_eq!(reply(q), None, "{q}");
        }
    }
}
