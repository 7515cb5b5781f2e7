//! The live status page (`/ui`) in a real browser: Debian's headless Chromium driven through
//! chromedriver (installed by `scripts/chromium-install.sh` when missing). A Postgres CDC
//! connector snapshots a table while the page is open; the test checks the connector rows,
//! that the snapshot's progress bar advances, that the page's Resume and Pause buttons change
//! what it shows, and keeps a screenshot under the test's output directory.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::postgres::Cluster;
use support::{Worker, wait_until};

/// chromedriver on a free port, and a headless Chromium session through it.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
}

impl Browser {
    fn start() -> Browser {
        let installed = Command::new(support::scripts().join("chromium-install.sh"))
            .status()
            .unwrap();
        assert!(
            installed.success(),
            "scripts/chromium-install.sh failed: the status page test needs Debian's chromium and chromium-driver"
        );
        let port = support::tansu::free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver listens", Duration::from_secs(30), || {
            ureq::get(&format!("{url}/status")).call().is_ok()
        });
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
            }
        });
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.as_object().unwrap().clone())
                    .connect(&url),
            )
            .unwrap();
        Browser {
            runtime,
            client: Some(client),
            driver,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap();
    }

    /// The text of the first element matching `css`, if there is one now. The page redraws
    /// every second, so an element found may be gone when read: that reads as `None`.
    fn text(&self, css: &str) -> Option<String> {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.ok()?;
            element.text().await.ok()
        })
    }

    fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.ok()?;
            element.attr(name).await.ok().flatten()
        })
    }

    /// Clicks the element matching `css`, trying again when a redraw replaced it.
    fn click(&self, css: &str) {
        wait_until(
            &format!("{css} is clicked"),
            Duration::from_secs(10),
            || {
                self.runtime.block_on(async {
                    match self.client().find(Locator::Css(css)).await {
                        Ok(element) => element.click().await.is_ok(),
                        Err(_) => false,
                    }
                })
            },
        );
    }

    fn screenshot(&self, path: &std::path::Path) {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The value of the snapshot progress bar of `public.accounts`.
fn progress(browser: &Browser) -> Option<(f64, f64)> {
    let css = "progress[data-connector=\"inventory\"][data-table=\"public.accounts\"]";
    let value = browser.attr(css, "value")?.parse().ok()?;
    let max = browser.attr(css, "max")?.parse().ok()?;
    Some((value, max))
}

#[test]
fn the_status_page_shows_a_snapshot_advancing_and_its_buttons_pause_and_resume() {
    let pg = Cluster::start();
    pg.create_accounts();
    pg.sql("insert into accounts select g, 'owner-' || g, g from generate_series(1, 400000) g");
    pg.sql("analyze accounts");
    let dir = tempfile::tempdir().unwrap();
    let args = support::write_cdc_configs(dir.path(), None, &json!({}));
    let worker = Worker::start(dir.path(), &args);
    // The sink is paused first, so the snapshot fills the pipeline and waits for it: the page
    // meets it mid-way whatever the machine's speed.
    assert_eq!(worker.put("/connectors/oracle/pause", None).0, 202);
    let inventory = json!({"name": "inventory", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "postgres", "database.password": "", "database.dbname": "postgres",
        "topic.prefix": "dbserver1", "table.include.list": "public.accounts",
    }});
    assert_eq!(worker.post("/connectors", Some(&inventory)).0, 201);

    let browser = Browser::start();
    browser.goto(&format!("{}/ui", worker.rest));
    wait_until(
        "the page lists both connectors",
        Duration::from_secs(30),
        || {
            browser
                .text("section[data-connector=\"inventory\"] h2")
                .as_deref()
                == Some("inventory")
                && browser
                    .text("section[data-connector=\"oracle\"] h2")
                    .as_deref()
                    == Some("oracle")
        },
    );
    wait_until("the sink shows PAUSED", Duration::from_secs(30), || {
        browser
            .text("section[data-connector=\"oracle\"] [data-role=\"connector-state\"]")
            .as_deref()
            == Some("PAUSED")
    });
    let mut first = None;
    wait_until(
        "the snapshot's progress bar shows",
        Duration::from_secs(60),
        || {
            first = progress(&browser);
            first.is_some_and(|(value, _)| value > 0.0)
        },
    );
    let (value, max) = first.unwrap();
    assert!(
        value < max,
        "the paused sink holds the snapshot mid-way: {value} of {max}"
    );
    assert!(
        browser
            .text("section[data-connector=\"inventory\"] .snapshot .rows")
            .is_some_and(|t| t.contains("ETA")),
        "the progress line has rows and an ETA"
    );

    browser.click("button[data-action=\"resume\"][data-connector=\"oracle\"]");
    let started = Instant::now();
    wait_until("the progress bar advances", Duration::from_secs(60), || {
        progress(&browser).is_some_and(|(now, _)| now > value)
    });
    eprintln!(
        "progress {value} of {max} rows while held; advanced {:?} after Resume",
        started.elapsed()
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status_page");
    std::fs::create_dir_all(&shots).unwrap();
    browser.screenshot(&shots.join("snapshot-running.png"));

    browser.click("button[data-action=\"pause\"][data-connector=\"inventory\"]");
    wait_until("the source shows PAUSED", Duration::from_secs(30), || {
        browser
            .text("section[data-connector=\"inventory\"] [data-role=\"connector-state\"]")
            .as_deref()
            == Some("PAUSED")
    });
    assert_eq!(
        worker.get("/connectors/inventory/status").1["connector"]["state"],
        "PAUSED"
    );
    browser.screenshot(&shots.join("paused.png"));
    eprintln!("screenshots in {}", shots.display());
    drop(browser);
    let (exit, logs) = worker.terminate();
    assert!(exit.success(), "{logs}");
}
