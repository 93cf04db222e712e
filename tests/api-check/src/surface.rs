//! A crate's public surface, read from rustdoc's JSON output: every item a user can name,
//! keyed by its path, with a canonical signature that two builds of the crate can compare.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

/// The rustdoc JSON format this reader was written against (rustc 1.95).
pub const FORMAT_VERSIONS: std::ops::RangeInclusive<u64> = 50..=60;

/// Auto traits users can name on stable Rust.
const STABLE_AUTO_TRAITS: &[&str] = &[
    "core::marker::Send",
    "core::marker::Sync",
    "core::marker::Unpin",
    "core::panic::unwind_safe::UnwindSafe",
    "core::panic::unwind_safe::RefUnwindSafe",
];

/// What an entry is to its parent: additions of some kinds break users of the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// An item of its own (a function, a type, a module, an impl of a trait, …).
    Item,
    /// A public field: a new one breaks struct literals of an exhaustive struct.
    Field,
    /// A variant: a new one breaks exhaustive `match`es.
    Variant,
    /// A trait item without a default: a new one breaks every implementation.
    Required,
    /// A trait item with a default.
    Provided,
}

/// One nameable thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Canonical signature: equal signatures mean a compatible item.
    pub sig: String,
    pub member: Member,
    /// The path of the struct, enum or trait it belongs to.
    pub parent: Option<String>,
    /// A struct users can build with a literal, an enum they can match exhaustively, any
    /// trait (implementors must provide its required items).
    pub closed: bool,
}

/// Path → entry, for every public item reachable from the crate root.
pub type Surface = BTreeMap<String, Entry>;

/// Reads the surface of the crate in `doc` (rustdoc `--output-format json`).
pub fn surface(doc: &Value) -> Result<Surface, String> {
    let version = doc["format_version"].as_u64().unwrap_or(0);
    if !FORMAT_VERSIONS.contains(&version) {
        return Err(format!(
            "rustdoc JSON format {version} is not one this checker reads ({}..={}); update \
             tests/api-check for this toolchain",
            FORMAT_VERSIONS.start(),
            FORMAT_VERSIONS.end()
        ));
    }
    let root = doc["root"].clone();
    let reader = Reader {
        index: doc["index"]
            .as_object()
            .ok_or("rustdoc JSON without an index")?,
        paths: doc["paths"]
            .as_object()
            .ok_or("rustdoc JSON without paths")?,
    };
    let crate_name = reader
        .item(&root)
        .and_then(|i| i["name"].as_str())
        .ok_or("rustdoc JSON without its root module")?
        .to_owned();
    let mut out = Surface::new();
    let mut seen = HashSet::new();
    reader.module(&root, &crate_name, &mut out, &mut seen);
    Ok(out)
}

/// Where an entry stands.
enum Place<'p> {
    /// An item of its own.
    Item,
    /// A struct, enum or trait: whether its set of members is closed to additions.
    Set { closed: bool },
    /// A member of the struct, enum, trait or type at the path.
    Of(Member, &'p str),
}

struct Reader<'a> {
    index: &'a Map<String, Value>,
    paths: &'a Map<String, Value>,
}

fn key(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Reader<'_> {
    fn item(&self, id: &Value) -> Option<&Value> {
        self.index.get(&key(id))
    }

    fn ids<'v>(&self, v: &'v Value) -> impl Iterator<Item = &'v Value> {
        v.as_array().into_iter().flatten()
    }

    fn module(&self, id: &Value, prefix: &str, out: &mut Surface, seen: &mut HashSet<String>) {
        // A module re-exported under several names is walked under each, once.
        if !seen.insert(format!("{}@{prefix}", key(id))) {
            return;
        }
        let Some(module) = self.item(id) else { return };
        for child in self.ids(&module["inner"]["module"]["items"]) {
            let Some(item) = self.item(child) else {
                continue;
            };
            self.named(child, item, None, prefix, out, seen);
        }
    }

    /// Records `item`, reached as `prefix::name` (`name` overrides the item's own for a
    /// renaming re-export).
    fn named(
        &self,
        id: &Value,
        item: &Value,
        name: Option<&str>,
        prefix: &str,
        out: &mut Surface,
        seen: &mut HashSet<String>,
    ) {
        let inner = &item["inner"];
        let Some((kind, body)) = inner.as_object().and_then(|o| o.iter().next()) else {
            return;
        };
        if kind == "use" {
            return self.reexport(body, prefix, out, seen);
        }
        let Some(name) = name.or_else(|| item["name"].as_str()) else {
            return;
        };
        let path = format!("{prefix}::{name}");
        let non_exhaustive = item["attrs"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.to_string().contains("non_exhaustive")));
        match kind.as_str() {
            "module" => self.module(id, &path, out, seen),
            "struct" | "union" => {
                let (fields, stripped) = match &body["kind"] {
                    Value::Object(k) if k.contains_key("plain") => (
                        k["plain"]["fields"].clone(),
                        k["plain"]["has_stripped_fields"].as_bool().unwrap_or(true),
                    ),
                    Value::Object(k) if k.contains_key("tuple") => {
                        let f = k["tuple"].clone();
                        let stripped = self.ids(&f).any(Value::is_null);
                        (f, stripped)
                    }
                    _ => (body["fields"].clone(), false),
                };
                let sig = format!("{kind} {}", self.canon(&body["generics"]));
                self.put(
                    out,
                    &path,
                    sig,
                    Place::Set {
                        closed: !stripped && !non_exhaustive,
                    },
                );
                for (i, f) in self.ids(&fields).enumerate() {
                    if let Some(field) = self.item(f) {
                        let fname = field["name"].as_str().map_or(i.to_string(), str::to_owned);
                        let ty = self.canon(&field["inner"]["struct_field"]);
                        self.put(
                            out,
                            &format!("{path}.{fname}"),
                            ty,
                            Place::Of(Member::Field, &path),
                        );
                    }
                }
                self.impls(&body["impls"], &path, out);
            }
            "enum" => {
                let stripped = body["has_stripped_variants"].as_bool().unwrap_or(false);
                let sig = format!("enum {}", self.canon(&body["generics"]));
                self.put(
                    out,
                    &path,
                    sig,
                    Place::Set {
                        closed: !stripped && !non_exhaustive,
                    },
                );
                for v in self.ids(&body["variants"]) {
                    let Some(variant) = self.item(v) else {
                        continue;
                    };
                    let vname = variant["name"].as_str().unwrap_or("?");
                    let sig = self.variant(&variant["inner"]["variant"]);
                    self.put(
                        out,
                        &format!("{path}::{vname}"),
                        sig,
                        Place::Of(Member::Variant, &path),
                    );
                }
                self.impls(&body["impls"], &path, out);
            }
            "trait" => {
                let sig = format!(
                    "trait unsafe={} auto={} {} {}",
                    body["is_unsafe"],
                    body["is_auto"],
                    self.canon(&body["generics"]),
                    self.canon(&body["bounds"])
                );
                self.put(out, &path, sig, Place::Set { closed: true });
                for t in self.ids(&body["items"]) {
                    let Some(ti) = self.item(t) else { continue };
                    let Some((tkind, tbody)) =
                        ti["inner"].as_object().and_then(|o| o.iter().next())
                    else {
                        continue;
                    };
                    let required = match tkind.as_str() {
                        "function" => tbody["has_body"] == false,
                        "assoc_type" => tbody["type"].is_null(),
                        "assoc_const" => tbody["value"].is_null(),
                        _ => false,
                    };
                    let member = if required {
                        Member::Required
                    } else {
                        Member::Provided
                    };
                    let tname = ti["name"].as_str().unwrap_or("?");
                    let sig = format!("{tkind} required={required} {}", self.canon_item(tbody));
                    self.put(
                        out,
                        &format!("{path}::{tname}"),
                        sig,
                        Place::Of(member, &path),
                    );
                }
            }
            "function" | "constant" | "static" | "type_alias" | "trait_alias" => {
                let sig = format!("{kind} {}", self.canon_item(body));
                self.put(out, &path, sig, Place::Item);
            }
            "macro" | "proc_macro" => {
                self.put(out, &format!("{path}!"), kind.clone(), Place::Item);
            }
            _ => {}
        }
    }

    /// `pub use`: the target under its new name, a glob's items under the prefix, or (for
    /// an item of another crate) the re-export itself.
    fn reexport(&self, body: &Value, prefix: &str, out: &mut Surface, seen: &mut HashSet<String>) {
        let source = body["source"].as_str().unwrap_or("?");
        let target = body["id"].clone();
        if body["is_glob"] == true {
            match self.item(&target) {
                Some(_) => self.module(&target, prefix, out, seen),
                None => self.put(
                    out,
                    &format!("{prefix}::{source}::*"),
                    "glob".into(),
                    Place::Item,
                ),
            }
            return;
        }
        let name = body["name"].as_str().unwrap_or(source);
        match self.item(&target) {
            Some(item) if item["crate_id"] == 0 => {
                self.named(&target, item, Some(name), prefix, out, seen);
            }
            _ => {
                let to = self.full_path(&target).unwrap_or_else(|| source.to_owned());
                self.put(
                    out,
                    &format!("{prefix}::{name}"),
                    format!("re-export {to}"),
                    Place::Item,
                );
            }
        }
    }

    /// Inherent methods and constants, and the traits implemented (the stable auto traits
    /// included: losing `Send` breaks users). Blanket implementations come with any type;
    /// the compiler's unstable auto traits (`Freeze`, …) are nobody's API.
    fn impls(&self, impls: &Value, path: &str, out: &mut Surface) {
        for i in self.ids(impls) {
            let Some(imp) = self.item(i) else { continue };
            let body = &imp["inner"]["impl"];
            if !body["blanket_impl"].is_null() || body["is_negative"] == true {
                continue;
            }
            let trait_path = self.full_path(&body["trait"]["id"]).unwrap_or_default();
            if body["is_synthetic"] == true && !STABLE_AUTO_TRAITS.contains(&trait_path.as_str()) {
                continue;
            }
            if body["trait"].is_null() {
                for m in self.ids(&body["items"]) {
                    let Some(mi) = self.item(m) else { continue };
                    if mi["visibility"] != "public" {
                        continue;
                    }
                    let Some((mkind, mbody)) =
                        mi["inner"].as_object().and_then(|o| o.iter().next())
                    else {
                        continue;
                    };
                    let mname = mi["name"].as_str().unwrap_or("?");
                    let sig = format!(
                        "{mkind} {} where {}",
                        self.canon_item(mbody),
                        self.canon(&body["generics"])
                    );
                    self.put(
                        out,
                        &format!("{path}::{mname}"),
                        sig,
                        Place::Of(Member::Item, path),
                    );
                }
            } else {
                let t = self.canon(&body["trait"]);
                let g = self.canon(&body["generics"]);
                self.put(
                    out,
                    &format!("{path}: impl {t} {g}"),
                    String::new(),
                    Place::Of(Member::Item, path),
                );
            }
        }
    }

    fn variant(&self, v: &Value) -> String {
        match &v["kind"] {
            Value::Object(k) if k.contains_key("tuple") => {
                let fields: Vec<String> =
                    self.ids(&k["tuple"]).map(|f| self.field_type(f)).collect();
                format!("({})", fields.join(", "))
            }
            Value::Object(k) if k.contains_key("struct") => {
                let fields: Vec<String> = self
                    .ids(&k["struct"]["fields"])
                    .map(|f| {
                        let name = self.item(f).and_then(|i| i["name"].as_str()).unwrap_or("?");
                        format!("{name}: {}", self.field_type(f))
                    })
                    .collect();
                format!(
                    "{{{}}} stripped={}",
                    fields.join(", "),
                    k["struct"]["has_stripped_fields"]
                )
            }
            other => other.to_string(),
        }
    }

    fn field_type(&self, f: &Value) -> String {
        self.item(f).map_or_else(
            || "_".to_owned(),
            |i| self.canon(&i["inner"]["struct_field"]),
        )
    }

    fn put(&self, out: &mut Surface, path: &str, sig: String, place: Place<'_>) {
        let (member, parent, closed) = match place {
            Place::Item => (Member::Item, None, false),
            Place::Set { closed } => (Member::Item, None, closed),
            Place::Of(member, parent) => (member, Some(parent.to_owned()), false),
        };
        out.insert(
            path.to_owned(),
            Entry {
                sig,
                member,
                parent,
                closed,
            },
        );
    }

    fn full_path(&self, id: &Value) -> Option<String> {
        let parts = self.paths.get(&key(id))?["path"].as_array()?;
        let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
        Some(parts.join("::"))
    }

    /// An item body without what does not matter to users (`has_body` of a free function,
    /// the impl lists).
    fn canon_item(&self, body: &Value) -> String {
        let mut body = body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("has_body");
        }
        self.canon(&body)
    }

    /// A compact JSON text of `v` in which every reference to an item is its full path
    /// (ids differ between two builds; paths do not) and spans and docs are left out.
    fn canon(&self, v: &Value) -> String {
        self.resolve(v).to_string()
    }

    fn resolve(&self, v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut r = Map::new();
                let full = o
                    .get("id")
                    .filter(|_| o.contains_key("path"))
                    .and_then(|id| self.full_path(id));
                // Keys in sorted order, whether or not serde_json keeps insertion order
                // (its `preserve_order` feature, which another crate may turn on).
                let mut keys: Vec<(&String, &Value)> = o.iter().collect();
                keys.sort_by_key(|(k, _)| *k);
                for (k, x) in keys {
                    match k.as_str() {
                        "id" | "span" | "docs" | "links" | "impls" | "implementations" => {}
                        "path" => {
                            r.insert(
                                k.clone(),
                                full.clone().map_or_else(|| x.clone(), Value::String),
                            );
                        }
                        _ => {
                            r.insert(k.clone(), self.resolve(x));
                        }
                    }
                }
                Value::Object(r)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.resolve(x)).collect()),
            other => other.clone(),
        }
    }
}
