//! The sign-in throttle's counts (app::server::throttle), kept in the database: the rules on
//! both backends, and two `Throttle`s on one database (two replicas) counting together.
use std::net::IpAddr;

use app::server::throttle::{Keys, Throttle, FREE_PER_ACCOUNT, FREE_PER_ADDRESS};

use crate::both_backends;

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

async fn reserve(t: &Throttle, keys: &Keys) -> Result<(), u64> {
    t.reserve(keys).await.expect("the database answers")
}

both_backends!(
    after_the_free_failures_an_attempt_must_wait_and_is_not_counted,
    |app: crate::helpers::TestApp| async move {
        let t = Throttle::new(app.state.db.clone(), 10_000);
        let keys = Keys::new("Admin@Example.com ", ip("10.0.0.1"));
        for _ in 0..FREE_PER_ACCOUNT {
            assert_eq!(reserve(&t, &keys).await, Ok(()));
        }
        let wait = reserve(&t, &keys).await.expect_err("throttled");
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(reserve(&t, &Keys::new("admin@example.com", ip("10.0.0.1")))
            .await
            .is_err());
        // Another address is not locked out of the same account.
        assert_eq!(
            reserve(&t, &Keys::new("admin@example.com", ip("198.51.100.7"))).await,
            Ok(())
        );
        drop(app);
    }
);

both_backends!(
    successful_sign_ins_do_not_count_against_the_address,
    |app: crate::helpers::TestApp| async move {
        let t = Throttle::new(app.state.db.clone(), 10_000);
        // People behind one address signing in successfully, again and again.
        for n in 0..(3 * FREE_PER_ADDRESS) {
            let keys = Keys::new(&format!("person{}@example.com", n % 7), ip("192.0.2.10"));
            assert_eq!(reserve(&t, &keys).await, Ok(()), "sign-in {n}");
            t.succeeded(&keys).await.expect("recorded");
        }
        // Real failures from it still count: the free ones, then a wait.
        for n in 0..FREE_PER_ADDRESS {
            let keys = Keys::new(&format!("guess{n}@example.com"), ip("192.0.2.10"));
            assert_eq!(reserve(&t, &keys).await, Ok(()), "failure {n}");
        }
        assert!(
            reserve(&t, &Keys::new("another@example.com", ip("192.0.2.10")))
                .await
                .is_err()
        );
        drop(app);
    }
);

both_backends!(
    one_address_trying_many_emails_is_stopped_too,
    |app: crate::helpers::TestApp| async move {
        let t = Throttle::new(app.state.db.clone(), 10_000);
        for n in 0..FREE_PER_ADDRESS {
            let keys = Keys::new(&format!("user{n}@example.com"), ip("203.0.113.9"));
            assert_eq!(reserve(&t, &keys).await, Ok(()));
        }
        assert!(reserve(
            &t,
            &Keys::new("someone-else@example.com", ip("203.0.113.9"))
        )
        .await
        .is_err());
        // The same /64 is the same client.
        let a = Keys::new("x@example.com", ip("2001:db8:1:2::1"));
        let b = Keys::new("x@example.com", ip("2001:db8:1:2:ffff::9"));
        for _ in 0..FREE_PER_ACCOUNT {
            let _ = reserve(&t, &a).await;
        }
        assert!(reserve(&t, &b).await.is_err());
        drop(app);
    }
);

both_backends!(
    success_clears_and_a_released_reservation_is_not_counted,
    |app: crate::helpers::TestApp| async move {
        let t = Throttle::new(app.state.db.clone(), 10_000);
        // The app's own sign-in (as the test's administrator) has rows of its own.
        let before = t.rows().await.expect("len");
        let keys = Keys::new("a@example.com", ip("10.0.0.2"));
        for _ in 0..FREE_PER_ACCOUNT {
            assert_eq!(reserve(&t, &keys).await, Ok(()));
            t.release(&keys).await.expect("release");
        }
        assert_eq!(reserve(&t, &keys).await, Ok(()));
        t.succeeded(&keys).await.expect("success");
        assert_eq!(
            t.rows().await.expect("len"),
            before + 1,
            "the account's row goes, the address's count stays"
        );
        drop(app);
    }
);

both_backends!(
    the_table_stays_within_its_capacity,
    |app: crate::helpers::TestApp| async move {
        let t = Throttle::new(app.state.db.clone(), 20);
        for n in 0..60u32 {
            let _ = reserve(
                &t,
                &Keys::new("a@example.com", Some(IpAddr::from(n.to_be_bytes()))),
            )
            .await;
            assert!(t.rows().await.expect("len") <= 20);
        }
        // The newest are kept: its account is still counted.
        let newest = Keys::new("a@example.com", Some(IpAddr::from(59u32.to_be_bytes())));
        for _ in 1..FREE_PER_ACCOUNT {
            let _ = reserve(&t, &newest).await;
        }
        assert!(reserve(&t, &newest).await.is_err());
        drop(app);
    }
);

both_backends!(
    two_replicas_count_the_same_failures,
    |app: crate::helpers::TestApp| async move {
        let a = Throttle::new(app.state.db.clone(), 10_000);
        let b = Throttle::new(app.state.db.clone(), 10_000);
        let keys = Keys::new("admin@example.com", ip("192.0.2.1"));
        for n in 0..FREE_PER_ACCOUNT {
            let replica = if n % 2 == 0 { &a } else { &b };
            assert_eq!(reserve(replica, &keys).await, Ok(()));
        }
        assert!(reserve(&a, &keys).await.is_err(), "A knows B's failures");
        assert!(reserve(&b, &keys).await.is_err(), "B knows A's failures");
        drop(app);
    }
);

// Parallel guesses on two replicas: only the free number pass, however they race.
both_backends!(
    parallel_guesses_over_two_replicas_get_only_the_free_tries,
    |app: crate::helpers::TestApp| async move {
        let a = Throttle::new(app.state.db.clone(), 10_000);
        let b = Throttle::new(app.state.db.clone(), 10_000);
        let keys = Keys::new("admin@example.com", ip("192.0.2.2"));
        let tries = (0..4 * FREE_PER_ACCOUNT).map(|n| {
            let t = if n % 2 == 0 { a.clone() } else { b.clone() };
            let keys = keys.clone();
            tokio::spawn(async move { t.reserve(&keys).await })
        });
        let mut passed = 0;
        for t in tries {
            match t.await.expect("join") {
                Ok(Ok(())) => passed += 1,
                Ok(Err(_)) => {}
                // SQLite's one writer may keep a racer waiting past its busy time: that attempt
                // failed (the sign-in is refused), which is not a pass.
                Err(_) => {}
            }
        }
        assert_eq!(passed, FREE_PER_ACCOUNT, "exactly the free tries pass");
        drop(app);
    }
);
