//! A tokio-tungstenite chat server, as its examples/server.rs does it: a peer
//! map behind a mutex, an unbounded channel per peer, and every text message
//! sent to every other peer. Over TLS (a tokio-rustls stream under the
//! WebSocket) with `--tls-cert` and `--tls-key`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::{future, pin_mut, StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

type PeerMap = Arc<Mutex<HashMap<SocketAddr, UnboundedSender<Message>>>>;

async fn handle(peers: PeerMap, stream: impl AsyncRead + AsyncWrite + Unpin, addr: SocketAddr) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (tx, rx) = unbounded();
    peers.lock().expect("peer map").insert(addr, tx);
    let (outgoing, incoming) = ws.split();
    let broadcast = incoming.try_for_each(|message| {
        if message.is_text() {
            let peers = peers.lock().expect("peer map");
            for (_, peer) in peers.iter().filter(|(peer, _)| **peer != addr) {
                let _ = peer.unbounded_send(message.clone());
            }
        }
        future::ok(())
    });
    let forward = rx.map(Ok).forward(outgoing);
    pin_mut!(broadcast, forward);
    future::select(broadcast, forward).await;
    peers.lock().expect("peer map").remove(&addr);
}

fn main() {
    tincan_peers::run(|listener, tls| async move {
        let peers = PeerMap::default();
        while let Ok((stream, addr)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let (peers, tls) = (peers.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            handle(peers, stream, addr).await;
                        }
                    }
                    None => handle(peers, stream, addr).await,
                }
            });
        }
    });
}
