//! [`Text`]: the string of [`crate::data::Value::String`] and of a header's name, owned or
//! shared.
//!
//! Why not `String`: a source builds many records that carry the same strings (Debezium's
//! `source` block, its context headers, a table's topic). Cloning a `String` copies it to a
//! new allocation and dropping it frees one, per record; at a million snapshot rows a second
//! that was a fifth of the worker's time. A shared [`Text`] clones by a reference count, a
//! static one for free, and an owned one (what decoders and converters produce) costs what a
//! `String` does. Every form reads the same: it derefs to `str`, and compares, hashes and
//! orders by its text alone.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// UTF-8 text, owned (`String`), shared (`Arc<str>`) or static.
///
/// Clone a shared or static one freely; make one shared with [`Text::shared`] when it is
/// put on many records. Equality, ordering and hashing are by the text, whatever the form.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Owned(String),
    Shared(Arc<str>),
    Static(&'static str),
}

impl Text {
    /// Text cloned by a reference count: for a string many records carry.
    pub fn shared(text: &str) -> Text {
        Text(Repr::Shared(Arc::from(text)))
    }

    /// The text of a name (a connector's, a topic prefix, a table's) as static text, kept for
    /// the life of the process: clones and drops of it touch no shared counter, which matters
    /// when one thread builds records and another drops them (a shared counter's cache line
    /// then moves between their cores on every record). Each distinct text is kept once, so
    /// this is for the small, bounded set of names a worker sees, never for data.
    pub fn interned(text: &str) -> Text {
        static NAMES: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> =
            std::sync::Mutex::new(None);
        let mut names = NAMES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let names = names.get_or_insert_with(Default::default);
        let name = match names.get(text) {
            Some(name) => *name,
            None => {
                let name: &'static str = Box::leak(text.to_owned().into_boxed_str());
                names.insert(name);
                name
            }
        };
        Text(Repr::Static(name))
    }

    /// Static text: clones and drops cost nothing.
    pub const fn from_static(text: &'static str) -> Text {
        Text(Repr::Static(text))
    }

    /// The same text, in a form whose clones share it (this one becomes shared too).
    pub fn share(&mut self) -> Text {
        if let Repr::Owned(owned) = &mut self.0 {
            self.0 = Repr::Shared(Arc::from(std::mem::take(owned)));
        }
        self.clone()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Owned(s) => s,
            Repr::Shared(s) => s,
            Repr::Static(s) => s,
        }
    }

    /// The text as a `String`, moved out when owned, copied otherwise.
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Owned(s) => s,
            Repr::Shared(s) => s.as_ref().to_owned(),
            Repr::Static(s) => s.to_owned(),
        }
    }

    /// The text to change in place (copied into an owned `String` first unless it is one).
    pub fn make_mut(&mut self) -> &mut String {
        if !matches!(self.0, Repr::Owned(_)) {
            self.0 = Repr::Owned(self.as_str().to_owned());
        }
        match &mut self.0 {
            Repr::Owned(s) => s,
            _ => unreachable!("just made owned"),
        }
    }

    /// Heap bytes this value owns alone (a shared text's bytes are counted by no one, like a
    /// shared schema), for memory budgets.
    pub fn owned_bytes(&self) -> usize {
        match &self.0 {
            Repr::Owned(s) => s.capacity(),
            Repr::Shared(_) | Repr::Static(_) => 0,
        }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::from_static("")
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(Repr::Owned(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(Repr::Owned(text.to_owned()))
    }
}

impl From<&String> for Text {
    fn from(text: &String) -> Text {
        Text(Repr::Owned(text.clone()))
    }
}

impl From<Arc<str>> for Text {
    fn from(text: Arc<str>) -> Text {
        Text(Repr::Shared(text))
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.into_string()
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_compares_and_hashes_by_its_text() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |t: &Text| {
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            h.finish()
        };
        let owned = Text::from("topic".to_owned());
        let shared = Text::shared("topic");
        let fixed = Text::from_static("topic");
        assert_eq!(owned, shared);
        assert_eq!(shared, fixed);
        assert_eq!(hash(&owned), hash(&fixed));
        assert_eq!(owned, "topic");
        assert_eq!(&*shared, "topic");
        assert!(Text::from_static("a") < Text::shared("b"));
        assert_eq!(format!("{shared:?} {fixed}"), "\"topic\" topic");
    }

    #[test]
    fn sharing_an_owned_text_keeps_it_and_changing_a_shared_one_copies_it() {
        let mut owned = Text::from("abc");
        let shared = owned.share();
        assert_eq!(owned.owned_bytes(), 0);
        let mut changed = shared.clone();
        changed.make_mut().push('d');
        assert_eq!(changed, "abcd");
        assert_eq!(shared, "abc");
        assert_eq!(owned.into_string(), "abc");
    }

    #[test]
    fn a_name_is_interned_once() {
        let a = Text::interned("dbserver1");
        let b = Text::interned(&String::from("dbserver1"));
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr());
        assert_eq!(a.owned_bytes(), 0);
    }
}
