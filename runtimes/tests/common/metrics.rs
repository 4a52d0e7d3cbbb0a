//! `/metrics` read as a scraper reads it: parsed as the Prometheus text
//! format, never matched with a regex.

use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

use super::{deadline, http_get, WAIT};

/// `GET /metrics` on `port`, parsed.
pub fn scrape(port: u16) -> Scrape {
    let response = http_get(port, "/metrics");
    assert_eq!(response.status, 200, "{response:?}");
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = String::from_utf8(response.body).expect("UTF-8 metrics");
    Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("the text format")
}

/// The value of the sample `name` whose labels include `labels`.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
}

/// How many observations the histogram `name` holds (its `+Inf` bucket).
pub fn histogram_count(scrape: &Scrape, name: &str) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .unwrap_or_else(|| panic!("no histogram {name}"));
    match &sample.value {
        Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap_or_else(|| panic!("no +Inf bucket in {buckets:?}")),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// Scrapes until `ready` holds for the scrape, within [`WAIT`]; returns it.
pub fn scrape_until(port: u16, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let until = deadline();
    loop {
        let scrape = scrape(port);
        if ready(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < until,
            "waited {WAIT:?} for {what}; last scrape: {:#?}",
            scrape.samples
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
