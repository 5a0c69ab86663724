//! SIGKILL at random points of `service-account` and `refresh` runs against the real
//! provider. After every kill the netrc must be the old file or the new one (never partial,
//! never empty, always parsing, the other entries intact, mode 0600), and the token store
//! must parse. Killed runs may leave temp files (nothing can clean up after SIGKILL); the
//! next successful run removes those older than a minute.
//!
//! The delays are drawn from 0 to a little more than a whole run takes here, so the kills
//! spread over start-up, the token request and the two file writes. The seed is printed;
//! set `KILL_TEST_SEED` to replay one.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::support::fault::{
    DEFAULT_ENTRY, OTHER_ENTRIES, leftovers, netrc_password, seed_netrc, store_path,
};
use crate::support::proc::{signal_group, wait_until};
use crate::support::{BrowserMode, Idp, IdpOptions, TestEnv, describe};
use nix_cache_login::netrc::Netrc;
use nix_cache_login::token_store::TokenStore;

const HOST: &str = "cache.test";

/// xorshift64*: enough randomness for delays, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock(name: &str) -> Rng {
        let seed = std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("{name}={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// How many kills a loop needs: at least `kills`, and more (up to `max_kills`) until the
/// dangerous window (store already new, netrc still old) was hit `between_at_least` times.
struct Goal {
    kills: usize,
    between_at_least: usize,
    max_kills: usize,
}

/// What a kill can do to the session.
#[derive(Clone, Copy, PartialEq)]
enum Rotation {
    /// The old refresh token (or the client secret) stays good: every kill is survivable.
    Off,
    /// The provider spends the refresh token it answers: a run killed after the answer and
    /// before the store was saved loses the session. The next `refresh` must then say that a
    /// login is needed (exit 3) and change nothing; the loop logs in again.
    On,
}

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    finished_first: usize,
    netrc_old: usize,
    netrc_new: usize,
    store_old: usize,
    store_new: usize,
    /// Store already new, netrc still old: killed between the two writes.
    between: usize,
    /// Killed after the provider rotated the refresh token, before the store had it.
    sessions_lost: usize,
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The median wall time of `n` unkilled runs.
fn typical_run(env: &TestEnv, command: &str, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let out = env.cli(&[command]);
            assert!(out.status.success(), "{command}: {}", describe(&out));
            started.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

/// Runs `command` until `goal` is met by runs killed after a random delay, checking the files
/// after each kill.
fn kill_loop(
    env: &TestEnv,
    command: &str,
    goal: &Goal,
    rotation: Rotation,
    rng: &mut Rng,
) -> Tally {
    let netrc_path = env.netrc_path();
    let store = store_path(env, &env.config_path());
    let typical = typical_run(env, command, 5);
    // The bound follows the machine's load: a run that finished before its kill shrinks it,
    // a killed one stretches it, which settles with about one run in six finishing, so the
    // kills cover the whole run, its last writes included.
    let mut max_delay_us = (typical.as_micros() as u64) * 6 / 5;
    println!("{command}: a whole run takes {typical:?}; kills after 0..{max_delay_us} µs at first");
    let mut tally = Tally::default();
    while tally.kills < goal.kills
        || (tally.between < goal.between_at_least && tally.kills < goal.max_kills)
    {
        let netrc_before = fs::read(&netrc_path).unwrap();
        let store_before = fs::read(&store).unwrap();
        let old_token = netrc_password(&netrc_path, HOST).unwrap();

        let mut child = env.spawn(&[command]);
        let delay = Duration::from_micros(rng.below(max_delay_us + 1));
        std::thread::sleep(delay);
        let finished = matches!(child.try_wait(), Ok(Some(_)));
        signal_group(child.id(), libc::SIGKILL);
        let status = wait_until(&mut child, Instant::now() + Duration::from_secs(30))
            .expect("the killed run is reaped");
        if finished {
            assert!(status.success(), "{command} run finished but failed");
            tally.finished_first += 1;
            max_delay_us = max_delay_us * 9 / 10;
        } else {
            tally.kills += 1;
            max_delay_us = max_delay_us * 51 / 50 + 1;
        }

        // The netrc: old or new, whole.
        let after = fs::read(&netrc_path).expect("the netrc is still there");
        assert!(!after.is_empty(), "the netrc is empty after a kill");
        assert_eq!(mode(&netrc_path), 0o600);
        let text = String::from_utf8(after.clone()).expect("UTF-8 netrc");
        assert!(
            text.starts_with(OTHER_ENTRIES),
            "other entries lost:\n{text}"
        );
        assert!(text.ends_with(DEFAULT_ENTRY), "default entry lost:\n{text}");
        let netrc_is_new = if after == netrc_before {
            tally.netrc_old += 1;
            false
        } else {
            let new_token = netrc_password(&netrc_path, HOST).expect("an entry for the host");
            assert_ne!(new_token, old_token);
            let mut expected = Netrc::parse(&netrc_before);
            expected.upsert(HOST, "nix-cache-login", &new_token);
            assert_eq!(
                text,
                String::from_utf8(expected.to_bytes()).unwrap(),
                "the new netrc is the old one with the entry replaced"
            );
            tally.netrc_new += 1;
            true
        };

        // The store: parses, old or new.
        let session = TokenStore::at(store.clone())
            .peek()
            .unwrap_or_else(|e| panic!("the token store does not parse after a kill: {e:#}"))
            .expect("the token store is still there");
        assert_eq!(mode(&store), 0o600);
        let store_is_new = fs::read(&store).unwrap() != store_before;
        if store_is_new {
            tally.store_new += 1;
        } else {
            tally.store_old += 1;
        }
        if netrc_is_new {
            // The store is saved first, then the netrc.
            assert_eq!(
                session.access_token.expose(),
                netrc_password(&netrc_path, HOST).unwrap(),
                "a new netrc comes after a new store"
            );
        } else if store_is_new {
            tally.between += 1;
        }
        if rotation == Rotation::On && !store_is_new && !finished {
            recover_session(env, command, &mut tally);
        }
    }
    println!("{command}: kills after 0..{max_delay_us} µs at the end");
    tally
}

/// After a kill that left the old store: a `refresh` either works (the kill came before the
/// provider spent the refresh token) or says a login is needed and changes nothing, and then a
/// login brings the session back.
fn recover_session(env: &TestEnv, command: &str, tally: &mut Tally) {
    let netrc_before = fs::read(env.netrc_path()).unwrap();
    let store = store_path(env, &env.config_path());
    let store_before = fs::read(&store).unwrap();
    let out = env.cli(&[command]);
    if out.status.success() {
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(3),
        "{command} after a kill: {}",
        describe(&out)
    );
    assert_eq!(
        fs::read(env.netrc_path()).unwrap(),
        netrc_before,
        "a refused refresh changed the netrc"
    );
    assert_eq!(
        fs::read(&store).unwrap(),
        store_before,
        "a refused refresh changed the store"
    );
    tally.sessions_lost += 1;
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login again: {}", describe(&out));
}

/// Leftover temp files of killed runs go with the next successful run once they are a
/// minute old; younger ones stay (they could be a live run's).
fn leftovers_are_cleaned(env: &TestEnv, command: &str) -> usize {
    let left = leftovers(env.dir());
    let old = SystemTime::now() - Duration::from_secs(120);
    for path in &left {
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(old))
            .unwrap();
    }
    let fresh = env
        .netrc_path()
        .with_file_name(format!(".netrc.tmp.{}.1", std::process::id()));
    fs::write(&fresh, b"partial").unwrap();
    let out = env.cli(&[command]);
    assert!(out.status.success(), "{command}: {}", describe(&out));
    let still: Vec<_> = leftovers(env.dir())
        .into_iter()
        .filter(|p| *p != fresh)
        .collect();
    assert!(
        still.is_empty(),
        "the stale temp files of killed runs are removed: {still:?}"
    );
    assert!(fresh.exists(), "a young temp file is left alone");
    fs::remove_file(&fresh).unwrap();
    left.len()
}

#[test]
fn sigkill_during_service_account() {
    let idp = Idp::start(IdpOptions {
        client_credentials_ttl: 3600,
        ..IdpOptions::default()
    });
    let env = TestEnv::new_server(&idp);
    seed_netrc(&env.netrc_path(), HOST, None);
    let out = env.cli(&["service-account"]);
    assert!(out.status.success(), "{}", describe(&out));

    let goal = Goal {
        kills: 210,
        between_at_least: 3,
        max_kills: 1500,
    };
    let tally = kill_and_recover(
        &idp,
        &env,
        "service-account",
        &goal,
        Rotation::Off,
        "KILL_TEST_SEED",
    );
    assert!(tally.kills >= 210, "{tally:?}");
    assert!(
        tally.between >= 3,
        "the window between the two writes was hit: {tally:?}"
    );
}

/// With refresh-token rotation on (the hard case): a refresh killed after the provider answered
/// spends the session, which no client can prevent; the files stay whole and the next refresh
/// says to log in.
#[test]
fn sigkill_during_refresh_with_rotation() {
    let idp = Idp::start(IdpOptions {
        rotate_refresh_token: true,
        ..IdpOptions::default()
    });
    let env = TestEnv::new(&idp).with_browser(BrowserMode::Approve);
    seed_netrc(&env.netrc_path(), HOST, None);
    let out = env.cli(&["login", "--timeout", "60s"]);
    assert!(out.status.success(), "login: {}", describe(&out));

    let goal = Goal {
        kills: 60,
        between_at_least: 1,
        max_kills: 400,
    };
    let tally = kill_and_recover(
        &idp,
        &env,
        "refresh",
        &goal,
        Rotation::On,
        "KILL_TEST_SEED_REFRESH",
    );
    assert!(tally.kills >= 60, "{tally:?}");
    assert!(
        tally.between >= 1,
        "the window between the two writes was hit: {tally:?}"
    );
}

/// [`kill_loop`] of `command` until `goal` (the seed from `seed_var` or the clock), then
/// [`leftovers_are_cleaned`]; the token in the netrc at the end must be live at `idp`.
/// Prints the figures.
fn kill_and_recover(
    idp: &Idp,
    env: &TestEnv,
    command: &str,
    goal: &Goal,
    rotation: Rotation,
    seed_var: &str,
) -> Tally {
    let mut rng = Rng::from_env_or_clock(seed_var);
    let started = Instant::now();
    let tally = kill_loop(env, command, goal, rotation, &mut rng);
    let left = leftovers_are_cleaned(env, command);
    let token = netrc_password(&env.netrc_path(), HOST).unwrap();
    assert!(idp.is_active(&token), "the last token is good");
    println!(
        "{command}: {} kills survived ({} runs finished before their kill) in {:?}; netrc old {} / new {}; store old {} / new {}; killed between store and netrc {}; sessions lost to a kill after the provider rotated {}; {left} temp files left by kills, all removed by the next run",
        tally.kills,
        tally.finished_first,
        started.elapsed(),
        tally.netrc_old,
        tally.netrc_new,
        tally.store_old,
        tally.store_new,
        tally.between,
        tally.sessions_lost
    );
    tally
}
