//! Lenient scalar forms that Gravitee definitions use in practice: numbers written as strings
//! (`"2000"`), booleans written as strings (`"true"`), and values that may be an expression.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Accepts `2000` or `"2000"`.
pub(crate) fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct NumberVisitor;
    impl Visitor<'_> for NumberVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer (or a string holding one)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v.fract() == 0.0 && v >= 0.0 && v <= u64::MAX as f64 {
                Ok(v as u64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
    deserializer.deserialize_any(NumberVisitor)
}

/// Accepts `-1` or `"-1"`.
pub(crate) fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct NumberVisitor;
    impl Visitor<'_> for NumberVisitor {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer (or a string holding one)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            v.trim().parse().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
    deserializer.deserialize_any(NumberVisitor)
}

/// Accepts `true` or `"true"` (any case).
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct BoolVisitor;
    impl Visitor<'_> for BoolVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    deserializer.deserialize_any(BoolVisitor)
}

/// A string-typed property that is either a fixed value, checked at load time, or a template
/// with `{#…}` expressions, evaluated and checked per request (DESIGN 4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dynamic<T> {
    Static(T),
    Expression(String),
}

impl<T> Dynamic<T> {
    pub fn as_static(&self) -> Option<&T> {
        match self {
            Dynamic::Static(value) => Some(value),
            Dynamic::Expression(_) => None,
        }
    }
}

impl<T: Default> Default for Dynamic<T> {
    fn default() -> Self {
        Dynamic::Static(T::default())
    }
}

/// True when a string holds an expression-language template part.
pub fn is_expression(value: &str) -> bool {
    value.contains("{#")
}

impl<'de, T> Deserialize<'de> for Dynamic<T>
where
    T: FromStr<Err = String>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if is_expression(&raw) {
            return Ok(Dynamic::Expression(raw));
        }
        raw.parse().map(Dynamic::Static).map_err(de::Error::custom)
    }
}

impl<T: fmt::Display> Serialize for Dynamic<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Dynamic::Static(value) => serializer.collect_str(value),
            Dynamic::Expression(expression) => serializer.serialize_str(expression),
        }
    }
}

/// Declares a closed set of string values with their JSON spelling, aliases, `FromStr` (whose
/// error names the value and every allowed value) and `Display`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident default $default:ident { $($body:tt)* }) => {
        string_enum!($(#[$meta])* $name { $($body)* });

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }
    };
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every accepted spelling, in documentation order.
            pub const ALLOWED: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                $(
                    if value.eq_ignore_ascii_case($text) $(|| value.eq_ignore_ascii_case($alias))* {
                        return Ok($name::$variant);
                    }
                )+
                Err(format!(
                    "invalid value `{}`, expected one of {}",
                    value,
                    $name::ALLOWED.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;
