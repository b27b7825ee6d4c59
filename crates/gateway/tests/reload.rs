//! Hot reload, as an operator does it: definition files added, changed, broken, duplicated and
//! removed under a running `kafka-edge run --api DIR`, and SIGHUP. An SSE stream on an API whose
//! file does not change must see none of it; the stream of a changed API ends with `goaway` after
//! the grace period.

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::json;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a change may take to be served in these tests: the gateway reads the files every
/// second; the rest is margin for a loaded machine.
const RELOADED_WITHIN: Duration = Duration::from_secs(10);

/// Polls `check` until it is true or `limit` passed.
async fn until<F: Future<Output = bool>>(limit: Duration, mut check: impl FnMut() -> F) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn write(path: &Path, spec: &ApiSpec) {
    // Written beside and renamed, as editors and ConfigMaps do: never read half-written.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, spec.to_json().to_string()).expect("write definition");
    std::fs::rename(&partial, path).expect("rename definition");
}

/// The next event of an SSE stream that is not a heartbeat.
async fn next_event<S, E>(stream: &mut S) -> eventsource_stream::Event
where
    S: futures::Stream<Item = Result<eventsource_stream::Event, E>> + Unpin,
    E: std::fmt::Debug,
{
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        let event = event.expect("an event in time").expect("the stream is open").expect("a valid event");
        if !event.data.is_empty() || event.event != "message" {
            return event;
        }
    }
}

async fn post_status(gateway: &GatewayProcess, path: &str, body: &str) -> Option<u16> {
    let response = gateway.http.post(format!("{}{path}", gateway.base)).body(body.to_string()).send().await;
    response.ok().map(|response| response.status().as_u16())
}

#[tokio::test]
async fn definitions_change_under_a_running_gateway_without_disturbing_other_apis() {
    let dir = tempfile::tempdir().expect("dir");
    let apis = dir.path().join("apis");
    std::fs::create_dir(&apis).expect("apis dir");
    let (steady_topic, changing_topic, moved_topic, added_topic) =
        (unique("steady"), unique("changing"), unique("moved"), unique("added"));
    for topic in [&steady_topic, &changing_topic, &moved_topic, &added_topic] {
        create_topic(topic, 1).await;
    }
    let mut steady = ApiSpec::new(&steady_topic);
    steady.consumer_extra = json!({"autoOffsetReset": "latest"});
    let mut changing = ApiSpec::new(&changing_topic);
    changing.consumer_extra = json!({"autoOffsetReset": "latest"});
    write(&apis.join("steady.json"), &steady);
    write(&apis.join("changing.json"), &changing);
    let gateway = GatewayProcess::start(
        dir.path(),
        &[],
        &[
            "--admin-listen".as_ref(),
            "off".as_ref(),
            "--reload-grace".as_ref(),
            "2".as_ref(),
            "--api".as_ref(),
            apis.as_os_str(),
        ],
    );
    assert!(
        until(RELOADED_WITHIN, || async { post_status(&gateway, &steady.path, "first").await == Some(202) }).await,
        "the gateway serves: {}",
        gateway.log()
    );

    // Streams on both APIs, each of which has seen one message.
    let open_stream = |path: String, client: &'static str| {
        let (http, url) = (gateway.http.clone(), format!("{}{path}", gateway.base));
        async move {
            let response = http
                .get(url)
                .header("Accept", "text/event-stream")
                .header("X-Gravitee-Client-Identifier", client)
                .send()
                .await
                .expect("SSE");
            assert_eq!(response.status(), 200);
            response.bytes_stream().eventsource()
        }
    };
    let mut steady_stream = open_stream(steady.path.clone(), "steady-reader").await;
    let mut changing_stream = open_stream(changing.path.clone(), "changing-reader").await;
    assert!(eventually(|| group_members(&group_of(&steady.id, "steady-reader")) == 1).await);
    assert!(eventually(|| group_members(&group_of(&changing.id, "changing-reader")) == 1).await);

    // An added file is served.
    let added = ApiSpec::new(&added_topic);
    write(&apis.join("added.json"), &added);
    assert!(
        until(RELOADED_WITHIN, || async { post_status(&gateway, &added.path, "new api").await == Some(202) }).await,
        "the added API is served: {}",
        gateway.log()
    );

    // A changed file: new requests get the new version (its producer writes to the new topic),
    // the stream opened on the old version ends with goaway after the 2 s grace.
    let mut changed = ApiSpec::new(&moved_topic);
    changed.id = changing.id.clone();
    changed.path = changing.path.clone();
    write(&apis.join("changing.json"), &changed);
    assert!(
        until(RELOADED_WITHIN, || async {
            post_status(&gateway, &changing.path, "after").await == Some(202) && record_count(&moved_topic) > 0
        })
        .await,
        "the changed API writes to its new topic: {}",
        gateway.log()
    );
    // POSTs that the old version took before the reload (to the old topic) may come first.
    let mut ended = next_event(&mut changing_stream).await;
    while ended.event == "message" && ended.data == "after" {
        ended = next_event(&mut changing_stream).await;
    }
    assert_eq!(ended.event, "goaway", "the old version's stream ends with goaway: {ended:?}");

    // An invalid change is refused and the previous version keeps serving.
    let added_file = apis.join("added.json");
    std::fs::write(&added_file, "{\"id\": ").expect("break the definition");
    assert!(
        until(RELOADED_WITHIN, || async { gateway.log().contains("Definition not reloaded") }).await,
        "the broken definition is reported: {}",
        gateway.log()
    );
    assert!(gateway.log().contains("invalid JSON"), "{}", gateway.log());
    assert_eq!(post_status(&gateway, &added.path, "still served").await, Some(202));

    // A file that claims a context path another file serves is refused; the other keeps it.
    let mut duplicate = ApiSpec::new(&added_topic);
    duplicate.path = steady.path.clone();
    write(&apis.join("duplicate.json"), &duplicate);
    let claim = format!("context path `{}` is also served by", steady.path);
    assert!(
        until(RELOADED_WITHIN, || async { gateway.log().contains(&claim) }).await,
        "the duplicate path is reported: {}",
        gateway.log()
    );

    // A removed file: 404 for new requests.
    std::fs::remove_file(&added_file).expect("remove");
    assert!(
        until(RELOADED_WITHIN, || async { post_status(&gateway, &added.path, "gone").await == Some(404) }).await,
        "the removed API answers 404: {}",
        gateway.log()
    );

    // SIGHUP reads the files again and does not end the process.
    gateway.signal("-HUP");
    assert!(until(RELOADED_WITHIN, || async { gateway.log().contains("SIGHUP received") }).await);
    assert_eq!(post_status(&gateway, &steady.path, "after sighup").await, Some(202));

    // The steady API's stream saw no reconnect: its next event is the next message.
    produce(&steady_topic, &[(None, "still streaming")]).await;
    let event = next_event(&mut steady_stream).await;
    assert_eq!((event.event.as_str(), event.data.as_str()), ("message", "after sighup"));
    let event = next_event(&mut steady_stream).await;
    assert_eq!((event.event.as_str(), event.data.as_str()), ("message", "still streaming"));
    assert!(gateway.log().matches("Serving API.").count() >= 4, "{}", gateway.log());

    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}
