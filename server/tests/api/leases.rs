//! Leases on background work (app::server::lease), as two replicas on one database see them:
//! two `Leases` with their own owner ids stand for two replicas.
use std::time::Duration;

use app::server::{
    error::ServiceError,
    lease::{Leases, Work},
};

use crate::both_backends;

both_backends!(
    a_lease_excludes_others_until_it_expires_or_is_handed_back,
    |app: crate::helpers::TestApp| async move {
        let db = app.state.db.clone();
        let a = Leases::new(db.clone(), Duration::from_millis(300));
        let b = Leases::new(db.clone(), Duration::from_secs(60));
        let work = Work::Onboarding(41);

        let held = a
            .claim(work)
            .await
            .expect("claim")
            .expect("A claims free work");
        assert!(
            b.claim(work).await.expect("claim").is_none(),
            "B cannot claim A's live lease"
        );
        assert!(
            a.claim(work).await.expect("claim").is_none(),
            "nor can A claim it twice"
        );
        assert!(held.renew().await.expect("renew"), "A renews its own lease");
        // Other work is independent.
        let other = b
            .claim(Work::Scan(41))
            .await
            .expect("claim")
            .expect("B claims other work");

        // A stops renewing (it died): after expiry B takes the work over, and A, were it only
        // paused, can neither renew nor record a step any more.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taken = b
            .claim(work)
            .await
            .expect("claim")
            .expect("B claims the expired lease");
        assert!(
            !held.renew().await.expect("renew"),
            "A's renewal fails: the lease is B's"
        );
        let mut tx = db.pool.begin().await.expect("tx");
        assert!(
            matches!(held.hold_in(&mut tx).await, Err(ServiceError::LeaseLost(_))),
            "A's step is refused"
        );
        drop(tx);
        held.release().await; // A's late release leaves B's lease alone.
        assert!(
            a.claim(work).await.expect("claim").is_none(),
            "B still holds it"
        );

        // B stops gracefully: everything it holds is handed back at once.
        assert_eq!(b.release_all().await.expect("release"), 2);
        assert!(
            a.claim(work).await.expect("claim").is_some(),
            "A claims what B handed back"
        );
        assert!(taken.renew().await.is_ok_and(|held| !held));
        drop(other);
        // The app owns the test database: it goes only now.
        drop(app);
    }
);
