use super::*;

#[test]
fn blank_values_mean_any_and_bad_ones_say_what_is_wrong() {
    assert_eq!(
        DashboardQuery::parse(Some(" "), Some(""), None),
        Ok(DashboardQuery::default())
    );
    let q = DashboardQuery::parse(Some("down"), Some(" Acme "), Some("3")).expect("valid");
    assert_eq!(q.health, Some(Health::Down));
    assert_eq!(q.company.as_deref(), Some("Acme"));
    assert_eq!(q.page, Some(3));
    let e = DashboardQuery::parse(Some("purple"), None, None).expect_err("health");
    assert_eq!(e.field, "health");
    assert!(e.message.contains("down, slow or up"), "{}", e.message);
    for bad in ["0", "-1", "two", "99999999999"] {
        let e = DashboardQuery::parse(None, None, Some(bad)).expect_err(bad);
        assert_eq!(e.field, "page", "{bad}");
    }
    let long = "x".repeat(COMPANY_FILTER_MAX + 1);
    let e = DashboardQuery::parse(None, Some(&long), None).expect_err("long");
    assert_eq!(e.field, "company");
    assert!(DashboardQuery::parse(None, Some(&long[1..]), None).is_ok());
    // However it came (the page's own calls too), the server checks the same.
    let sent = DashboardQuery {
        page: Some(0),
        ..Default::default()
    };
    assert!(sent.validate().is_err());
}

#[test]
fn the_filter_matches_health_and_any_case_of_the_company() {
    let down = ("Acme Freight", Some(Health::Down));
    let up = ("Globex", Some(Health::Up));
    let new = ("acme labs", None);
    let matches =
        |q: &DashboardQuery, (company, health): (&str, Option<Health>)| q.matches(company, health);
    let q = DashboardQuery {
        company: Some("ACME".into()),
        ..Default::default()
    };
    assert!(matches(&q, down) && matches(&q, new) && !matches(&q, up));
    let q = DashboardQuery {
        health: Some(Health::Down),
        ..Default::default()
    };
    assert!(matches(&q, down) && !matches(&q, up) && !matches(&q, new));
    assert!(matches(&DashboardQuery::default(), new));
}

#[test]
fn pages_hold_page_size_and_past_the_last_reads_the_last() {
    let items: Vec<usize> = (1..=60).collect();
    let (shown, p) = page_of(items.clone(), None, 70);
    assert_eq!(shown.len(), PAGE_SIZE);
    assert_eq!(
        (p.page, p.pages, p.matching, p.total, p.first, p.last),
        (1, 3, 60, 70, 1, 25)
    );
    let (shown, p) = page_of(items.clone(), Some(3), 70);
    assert_eq!(shown, (51..=60).collect::<Vec<_>>());
    assert_eq!((p.page, p.first, p.last), (3, 51, 60));
    let (_, p) = page_of(items, Some(9), 70);
    assert_eq!(p.page, 3);
    let (shown, p) = page_of(Vec::<usize>::new(), Some(2), 70);
    assert!(shown.is_empty());
    assert_eq!(
        (p.page, p.pages, p.matching, p.first, p.last),
        (1, 1, 0, 0, 0)
    );
}

#[test]
fn a_pages_address_keeps_the_filter() {
    let q = DashboardQuery {
        health: Some(Health::Slow),
        company: Some("A&B Co".into()),
        page: Some(2),
    };
    assert_eq!(
        q.href("connections", 3),
        "/health?tab=connections&health=slow&company=A%26B%20Co&page=3"
    );
    assert_eq!(
        DashboardQuery::default().href("suites", 1),
        "/health?tab=suites"
    );
}
