//! Connections spread over threads: each thread runs its share on a local
//! executor of its own (no locks or atomics per message), and the run's
//! control (gates, timers) runs on the main thread beside shard 0.

use std::future::Future;

use smol::LocalExecutor;

/// Runs `shard(t)` for every `t` in `0..threads`, each on a thread of its
/// own (shard 0 on this one, together with `control`), and returns what
/// `control` and the shards returned.
pub fn run<S, Fut, C>(
    threads: usize,
    shard: impl Fn(usize) -> Fut + Sync,
    control: impl Future<Output = C>,
) -> (C, Vec<S>)
where
    Fut: Future<Output = S>,
    S: Send,
{
    let shard = &shard;
    std::thread::scope(|scope| {
        let mut here = Vec::new(); // shards whose thread did not start
        let mut others = Vec::new();
        for t in 1..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("tincan-load-{t}"))
                .spawn_scoped(scope, move || smol::block_on(shard(t)));
            match spawned {
                Ok(handle) => others.push(handle),
                Err(e) => {
                    eprintln!("tincan-load: cannot start thread {t} ({e}); its connections run on the main thread");
                    here.push(t);
                }
            }
        }
        // Shard 0 is polled right here, not as a task, so its connections'
        // wake-ups go straight to this thread (one executor level, not two).
        let ex = LocalExecutor::new();
        let orphans: Vec<_> = here.into_iter().map(|t| ex.spawn(shard(t))).collect();
        let (out, mut shards) = smol::block_on(ex.run(smol::future::zip(control, async {
            let mut shards = vec![shard(0).await];
            for task in orphans {
                shards.push(task.await);
            }
            shards
        })));
        // A thread that panicked adds nothing (none should).
        shards.extend(others.into_iter().filter_map(|h| h.join().ok()));
        (out, shards)
    })
}

/// The connection indices of shard `t` of `threads`, out of `n`.
pub fn indices(t: usize, threads: usize, n: usize) -> impl Iterator<Item = usize> {
    (t..n).step_by(threads.max(1))
}

/// Runs `tasks` concurrently on a local executor until all are done.
pub async fn run_all<'a, F>(tasks: impl IntoIterator<Item = F>)
where
    F: Future<Output = ()> + 'a,
{
    let ex = LocalExecutor::<'a>::new();
    let tasks: Vec<_> = tasks.into_iter().map(|task| ex.spawn(task)).collect();
    ex.run(async {
        for task in tasks {
            task.await;
        }
    })
    .await;
}
