//! A tokio-tungstenite echo server, as its examples/echo-server.rs does it:
//! split the stream and forward every data message back. Over TLS (a
//! tokio-rustls stream under the WebSocket) with `--tls-cert` and
//! `--tls-key`.

use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite};

async fn echo(stream: impl AsyncRead + AsyncWrite + Unpin) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|m| std::future::ready(m.is_text() || m.is_binary()))
        .forward(write)
        .await;
}

fn main() {
    tincan_peers::run(|listener, tls| async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            echo(stream).await;
                        }
                    }
                    None => echo(stream).await,
                }
            });
        }
    });
}
