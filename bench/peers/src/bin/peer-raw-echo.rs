//! A raw TCP echo server: the ceiling for any protocol on top of TCP.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    tincan_peers::run(|listener, tls| async move {
        tincan_peers::no_tls(tls);
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}
