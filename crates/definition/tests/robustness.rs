//! Whatever text arrives, loading answers with a definition or with problems: it never panics.

use kafka_edge_definition::{load_str, Format};
use proptest::prelude::*;

/// JSON-ish values biased towards the field names and shapes of real definitions.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z{}#:/.,-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("id".to_string()),
            Just("name".to_string()),
            Just("type".to_string()),
            Just("listeners".to_string()),
            Just("paths".to_string()),
            Just("path".to_string()),
            Just("entrypoints".to_string()),
            Just("qos".to_string()),
            Just("configuration".to_string()),
            Just("endpointGroups".to_string()),
            Just("endpoints".to_string()),
            Just("sharedConfiguration".to_string()),
            Just("consumer".to_string()),
            Just("producer".to_string()),
            Just("topics".to_string()),
            Just("enabled".to_string()),
            Just("bootstrapServers".to_string()),
            Just("plans".to_string()),
            Just("flows".to_string()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = load_str(&text, Format::Json, "fuzz.json");
        let _ = load_str(&text, Format::Yaml, "fuzz.yaml");
    }

    #[test]
    fn arbitrary_definition_shapes_never_panic(value in json_value()) {
        let _ = load_str(&value.to_string(), Format::Json, "fuzz.json");
    }
}
