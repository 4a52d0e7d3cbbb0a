//! A tokio-tungstenite echo server, as its examples/echo-server.rs does it:
//! split the stream and forward every data message back.

use futures_util::{StreamExt, TryStreamExt};

fn main() {
    tincan_peers::run(|listener| async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (write, read) = ws.split();
                let _ = read
                    .try_filter(|m| std::future::ready(m.is_text() || m.is_binary()))
                    .forward(write)
                    .await;
            });
        }
    });
}
