//! The plugin-api compatibility check that CI runs (`scripts/api-check.sh`): reads the
//! public surface of two builds of a crate from rustdoc's JSON output and names every
//! change that breaks code written against the older one — an item removed or changed, a
//! field added to a struct users can build, a variant added to an enum they can match, a
//! required item added to a trait they implement, `#[non_exhaustive]` or a private field
//! added. Such a change needs a new major version (0.y → 0.(y+1) before 1.0).
//!
//! It is deliberately strict: any change to an item's signature counts as breaking, even
//! where the language would allow it (a looser bound, a renamed generic parameter).

mod compare;
mod moved;
mod surface;
mod text;
mod version;

pub use compare::{Report, compare, compare_moved};
pub use moved::Moves;
pub use surface::{Entry, FORMAT_VERSIONS, Member, Surface, surface};
pub use text::{from_text, to_text};
pub use version::{Version, needs_major};
