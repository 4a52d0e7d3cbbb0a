//! `--data-dir`: room history kept in an embedded store survives a restart,
//! and a store that cannot be used stops the server at start with a message
//! that names it. Run against every binary.

mod common;

use std::path::PathBuf;

use common::*;

/// A fresh directory for one test (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "tincan-data-dir-{name}-{}-{}",
            std::process::id(),
            BIN.rsplit('/').next().unwrap_or("bin")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        TempDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn history_survives_a_restart_on_the_same_directory() {
    let dir = TempDir::new("restart");
    let store = dir.0.join("store");
    let store = store.to_str().expect("UTF-8");
    let mut server = Server::start(&["--data-dir", store, "--history", "3"]);
    server.wait_line("restored 0 message(s) in 0 room(s)");
    let (mut alice, _) = ws_connect(&server, "/");
    let nick = expect_welcome(&mut alice);
    for text in ["zero", "one", "two", "/me three"] {
        ws_send_text(&mut alice, text);
        ws_text(&mut alice);
    }
    server.signal("TERM");
    let status = server.wait_exit(WAIT).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));

    let server = Server::start(&["--data-dir", store, "--history", "3"]);
    server.wait_line("restored 3 message(s) in 1 room(s)");
    let (mut bob, _) = ws_connect(&server, "/");
    expect_welcome(&mut bob);
    let history: Vec<String> = (0..3).map(|_| ws_text(&mut bob)).collect();
    assert_eq!(
        history,
        [
            chat_line(&nick, "one"),
            chat_line(&nick, "two"),
            format!("* {nick} three")
        ]
    );
    // New messages are kept after the restored ones.
    ws_send_text(&mut bob, "four");
    assert!(ws_text(&mut bob).ends_with(": four"));
}

#[test]
fn a_corrupt_store_stops_the_server_at_start_naming_the_file() {
    let dir = TempDir::new("corrupt");
    let file = dir.0.join("history.redb");
    std::fs::write(&file, vec![0x5a_u8; 8192]).expect("write garbage");
    let port = free_port().to_string();
    let run = run(&["--data-dir", dir.path(), &port]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let file = file.to_str().expect("UTF-8");
    assert!(
        run.stderr.contains("cannot open the history store") && run.stderr.contains(file),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unusable_directory_stops_the_server_at_start_naming_it() {
    // Tests may run as root, whom permissions do not stop: a directory
    // under a plain file cannot be made by anyone.
    let dir = TempDir::new("unwritable");
    let file = dir.0.join("file");
    std::fs::write(&file, b"not a directory").expect("write");
    let under = file.join("store");
    let under = under.to_str().expect("UTF-8");
    let port = free_port().to_string();
    let run = run(&["--data-dir", under, &port]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot create --data-dir {under}")),
        "{}",
        run.stderr
    );
}
