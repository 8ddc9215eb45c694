//! The health dashboard across connections, in three tabs (`?tab=`): Resolution center (score,
//! Up / Slow / Down now and over 24 hours, the open issues, one per finding), Connection health
//! (a card per connection, worst first) and Scan suites (schedule, Run now, runs with each check's
//! result and duration). Read again whenever any connection changes (the dashboard's live
//! stream) and every few seconds while open; rules in `model::dashboard`.
use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Form, hooks::use_query_map};

use crate::{
    api::{act_on_connection, health_dashboard},
    components::{
        live::{self, Link, LinkNotice},
        status::{fmt_time, ErrorBanner, StatePill},
        table::TableScroll,
    },
    model::{
        dashboard::{
            ConnectionCard, DashboardView, Health, HourHealth, OpenIssue, SuiteView, Traffic,
        },
        dashboard_page::{DashboardQuery, Paging, COMPANY_FILTER_MAX},
        Action as Step, ApiError, ConnectionAction, FieldError, ScanRunView,
    },
};

/// How often the open page reads the dashboard again until the server says (`refresh_secs`).
const REFRESH_SECS: u64 = 5;
/// Changes that come within this of the first are read with it, in one reading.
const CHANGE_COALESCE: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Resolution,
    Connections,
    Suites,
}

impl Tab {
    const ALL: [Tab; 3] = [Tab::Resolution, Tab::Connections, Tab::Suites];

    fn key(self) -> &'static str {
        match self {
            Tab::Resolution => "resolution",
            Tab::Connections => "connections",
            Tab::Suites => "suites",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Resolution => "Resolution center",
            Tab::Connections => "Connection health",
            Tab::Suites => "Scan suites",
        }
    }

    fn from_query(raw: Option<String>) -> Tab {
        Tab::ALL
            .into_iter()
            .find(|t| Some(t.key()) == raw.as_deref())
            .unwrap_or(Tab::Resolution)
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let query = use_query_map();
    let tab = Memo::new(move |_| Tab::from_query(query.with(|q| q.get("tab"))));
    // The tabs' filter and page, from the address; a value that is not valid is said, and the
    // dashboard read without it.
    let asked = Memo::new(move |_| {
        query.with(|q| {
            DashboardQuery::parse(
                q.get("health").as_deref(),
                q.get("company").as_deref(),
                q.get("page").as_deref(),
            )
        })
    });
    let tick = RwSignal::new(0u32);
    let run_now = Action::new(|(id, version): &(i64, i64)| {
        let (id, req) = (
            *id,
            ConnectionAction {
                action: Step::Rescan,
                version: *version,
            },
        );
        async move { act_on_connection(id, req).await.map(|_| ()) }
    });
    let data = Resource::new(
        move || {
            (
                tick.get(),
                run_now.version().get(),
                asked.get().unwrap_or_default(),
            )
        },
        |(_, _, q)| health_dashboard(q),
    );
    // Browser only (effects do not run on the server): after each reading, the next one a
    // heartbeat interval later.
    Effect::new(move |_| {
        let secs = data
            .get()
            .and_then(Result::ok)
            .map_or(REFRESH_SECS, |d| d.refresh_secs);
        if let Ok(handle) = set_timeout_with_handle(
            move || {
                tick.try_update(|n| *n += 1);
            },
            Duration::from_secs(secs),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    // Live: any connection's new event (a status, a scan, a check) reads the dashboard again,
    // at most twice a second however many change at once; the timer above keeps the heartbeat
    // ages and counts, which change without events, fresh.
    let link = RwSignal::new(Link::Connecting);
    let pending = StoredValue::new(false);
    live::follow_changes(link, move || {
        if pending.try_get_value().unwrap_or(true) {
            return;
        }
        pending.set_value(true);
        set_timeout(
            move || {
                let _ = pending.try_set_value(false);
                tick.try_update(|n| *n += 1);
            },
            CHANGE_COALESCE,
        );
    });
    view! {
        <section class="card" data-testid="health-dashboard">
            <Title text=crate::model::page_title(&["Health Dashboard"])/>
            <h1>"Health Dashboard"</h1>
            <LinkNotice link/>
            <nav class="tabs" aria-label="Dashboard tabs">
                // The filter goes with the tabs (both connection tabs use it), the page does not.
                {Tab::ALL.into_iter().map(|t| view! {
                    <a href=move || asked.get().unwrap_or_default().href(t.key(), 1) data-tab=t.key()
                        aria-current=move || (tab.get() == t).then_some("page")>{t.label()}</a>
                }).collect_view()}
            </nav>
            {move || run_now.value().get().and_then(Result::err).map(|error| view! { <ErrorBanner error/> })}
            {move || asked.get().err().map(|e: FieldError| view! {
                <p class="banner error" role="alert" data-testid="filter-error">{e.message}" Showing every connection instead."</p>
            })}
            // Outside the readings: what is being typed stays while the dashboard reads itself again.
            {move || view! { <Filter tab=tab.get() q=asked.get().unwrap_or_default()/> }}
            <Transition fallback=|| view! { <p class="muted">"Loading the dashboard…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => match tab.get() {
                            Tab::Resolution => view! { <Resolution d/> }.into_any(),
                            Tab::Connections => view! {
                                <Pager tab=Tab::Connections noun="Connections" paging=d.paging q=d.query.clone()/>
                                <Cards d/>
                            }.into_any(),
                            Tab::Suites => view! {
                                <Pager tab=Tab::Suites noun="Connections" paging=d.paging q=d.query.clone()/>
                                <Suites d run_now/>
                            }.into_any(),
                        },
                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

fn health_pill(h: Option<Health>) -> impl IntoView {
    match h {
        Some(h) => view! { <span class=format!("pill {}", h.tone().class()) data-testid="health">{h.label()}</span> }.into_any(),
        None => view! { <span class="pill tone-neutral" data-testid="health">"Not onboarded"</span> }.into_any(),
    }
}

#[component]
fn Resolution(d: DashboardView) -> impl IntoView {
    let open: usize = d.issue_counts.iter().map(|c| c.count).sum();
    let counts = d
        .issue_counts
        .iter()
        .map(|c| format!("{} {}", c.count, c.severity.label().to_lowercase()))
        .collect::<Vec<_>>()
        .join(" · ");
    let issues = d.issues.clone();
    view! {
        <div data-tab-panel="resolution">
            <div class="stats">
                <p><span class="score" data-testid="dashboard-score">{d.score}</span><span class="muted">" / 100 health score"</span></p>
                <p data-testid="now">
                    <strong data-testid="down-count">{d.down}</strong>" Down · "
                    <strong data-testid="slow-count">{d.slow}</strong>" Slow · "
                    <strong data-testid="up-count">{d.up}</strong>" Up"
                </p>
            </div>
            <h2 id="chart-title">"Up / Slow / Down, last 24 hours"</h2>
            <Chart hours=d.hours.clone()/>
            <h2>"Open issues"</h2>
            {if open == 0 {
                view! { <div class="banner ok" role="status" data-testid="no-issues">"No open issues."</div> }.into_any()
            } else {
                view! {
                    <p class="muted" data-testid="issue-counts">{format!("{open} open: {counts}")}</p>
                    <Pager tab=Tab::Resolution noun="Issues" paging=d.issue_paging q=d.query.clone()/>
                    {if issues.is_empty() {
                        view! { <p class="muted">"No open issue of the connections the filter matches."</p> }.into_any()
                    } else {
                        view! { <IssueTable issues/> }.into_any()
                    }}
                }.into_any()
            }}
        </div>
    }
}

/// Each hour's connections as a stacked bar (heights in tenths of the busiest hour, by class:
/// the page's policy allows no inline styles), with the numbers in words for screen readers.
#[component]
fn Chart(hours: Vec<HourHealth>) -> impl IntoView {
    let most = hours
        .iter()
        .map(|h| h.up + h.slow + h.down)
        .max()
        .unwrap_or(0)
        .max(1);
    let tenth = move |n: u32| (n * 10).div_ceil(most);
    view! {
        <ol class="chart" aria-labelledby="chart-title" data-testid="chart">
            {hours.into_iter().map(|h| {
                let label = format!("{}: {} Up, {} Slow, {} Down", h.start.format("%H:00"), h.up, h.slow, h.down);
                view! {
                    <li data-down=h.down data-slow=h.slow data-up=h.up>
                        <span class="bar" aria-hidden="true">
                            <span class=format!("seg down h{}", tenth(h.down))></span>
                            <span class=format!("seg slow h{}", tenth(h.slow))></span>
                            <span class=format!("seg up h{}", tenth(h.up))></span>
                        </span>
                        <span class="hour" aria-hidden="true">{h.start.format("%H").to_string()}</span>
                        <span class="visually-hidden">{label}</span>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}

#[component]
fn IssueTable(issues: Vec<OpenIssue>) -> impl IntoView {
    view! {
        <TableScroll label="Open issues">
            <table data-testid="open-issues">
                <thead><tr>
                    <th>"Issue"</th><th>"Connection"</th><th>"Severity"</th><th>"Category"</th>
                    <th>"First detected"</th><th>"Last detected"</th><th class="num">"Times seen"</th>
                </tr></thead>
                <tbody>
                    {issues.into_iter().map(|i| view! {
                        <tr data-issue=i.check_id.clone() data-connection=i.connection_id>
                            <td data-label="Issue"><a href=i.href.clone()>{i.name.clone()}</a><br/><span class="muted">{i.message.clone()}</span></td>
                            <td data-label="Connection">{i.company.clone()}</td>
                            <td data-label="Severity"><span class=format!("pill {}", i.severity.as_db())>{i.severity.label()}</span>" "{i.status.clone()}</td>
                            <td data-label="Category">{i.category.clone()}</td>
                            <td data-label="First detected">{fmt_time(i.first_seen)}</td>
                            <td data-label="Last detected">{fmt_time(i.last_seen)}</td>
                            <td data-label="Times seen" class="num" data-testid="times-seen">{i.times_seen}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </TableScroll>
    }
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "—".to_string(), |ms| format!("{ms} ms"))
}

fn traffic(t: &Traffic) -> String {
    match t.last_at {
        Some(at) => format!("{} (last {})", t.messages, fmt_time(at)),
        None => format!("{}", t.messages),
    }
}

fn nothing_shown(d: &DashboardView) -> &'static str {
    if d.paging.total == 0 {
        "No connections yet."
    } else {
        "No connection matches the filter."
    }
}

/// The tab's filter (health, company), a GET form: its address is the filter, so it can be
/// shared and the browser's back button undoes it.
#[component]
fn Filter(tab: Tab, q: DashboardQuery) -> impl IntoView {
    let company = q.company.clone().unwrap_or_default();
    let option = move |value: &'static str, label: &'static str| {
        let selected = q.health.map(Health::as_str).unwrap_or("") == value;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <Form method="GET" action="/health">
            <div class="filter" role="search" aria-label="Filter connections">
                <input type="hidden" name="tab" value=tab.key()/>
                <label>"Health "
                    <select name="health" data-testid="filter-health">
                        {option("", "Any")}{option("down", "Down")}{option("slow", "Slow")}{option("up", "Up")}
                    </select>
                </label>
                <label>"Company "
                    <input type="search" name="company" data-testid="filter-company" value=company maxlength=COMPANY_FILTER_MAX/>
                </label>
                <button type="submit" class="secondary" data-action="filter">"Filter"</button>
            </div>
        </Form>
    }
}

/// Where this page of `noun` stands, with the way to the pages before and after it.
#[component]
fn Pager(tab: Tab, noun: &'static str, paging: Paging, q: DashboardQuery) -> impl IntoView {
    let filtered = paging.matching != paging.total;
    let shown = if paging.matching == 0 {
        format!("No {} matches.", singular(noun))
    } else {
        format!(
            "{noun} {}–{} of {}{}",
            paging.first,
            paging.last,
            paging.matching,
            if filtered {
                format!(" matching (of {})", paging.total)
            } else {
                String::new()
            }
        )
    };
    let before = (paging.page > 1).then(|| {
        view! { <a href=q.href(tab.key(), paging.page - 1) rel="prev" data-action="page-before">"Previous page"</a> }
    });
    let after = (paging.page < paging.pages).then(|| {
        view! { <a href=q.href(tab.key(), paging.page + 1) rel="next" data-action="page-after">"Next page"</a> }
    });
    view! {
        <nav class="pager" aria-label=format!("Pages of {}", noun.to_lowercase())>
            <span data-testid="paging" aria-live="polite">{shown}</span>
            {(paging.pages > 1).then(|| view! { <span class="muted">{format!(" · page {} of {}", paging.page, paging.pages)}</span> })}
            " "{before}" "{after}
        </nav>
    }
}

fn singular(noun: &str) -> String {
    noun.trim_end_matches('s').to_lowercase()
}

#[component]
fn Cards(d: DashboardView) -> impl IntoView {
    if d.cards.is_empty() {
        return view! { <p class="muted">{nothing_shown(&d)}</p> }.into_any();
    }
    let slow_after = d.slow_after_secs / 60;
    view! {
        <h2>"Connections, worst first"</h2>
        <p class="muted">{format!("A connection whose last heartbeat answer is older than {slow_after} minutes reads Slow.")}</p>
        <div class="cards" data-tab-panel="connections">
            {d.cards.into_iter().map(|c| view! { <Card c/> }).collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn Card(c: ConnectionCard) -> impl IntoView {
    let id = c.connection.id;
    let title_id = format!("card-{id}-title");
    let last = c
        .last_heartbeat
        .map_or_else(|| "none in 24 hours".to_string(), fmt_time);
    view! {
        <article class="card-item" data-testid="connection-card" data-connection=id aria-labelledby=title_id.clone()>
            <h3 id=title_id.clone()>{c.connection.company.clone()}</h3>
            <p>{health_pill(c.health)}" "<StatePill state=c.connection.state/></p>
            <dl class="fields">
                <dt>"Last heartbeat"</dt><dd data-testid="last-heartbeat">{last}</dd>
                <dt>"Round trip"</dt><dd data-testid="round-trip">{format!("{} (p50 {}, p95 {})", ms(c.round_trip_ms), ms(c.p50_ms), ms(c.p95_ms))}</dd>
                <dt>"Heartbeats, 24 h"</dt><dd data-testid="heartbeats">{c.heartbeats_24h}</dd>
                <dt>"Outbound messages, 24 h"</dt><dd data-testid="outbound">{traffic(&c.outbound)}</dd>
                <dt>"Inbound messages, 24 h"</dt><dd data-testid="inbound">{traffic(&c.inbound)}</dd>
                <dt>"Open issues"</dt><dd data-testid="card-issues">{c.open_issues}</dd>
                <dt>"Health score"</dt><dd>{c.score}</dd>
            </dl>
            <p>
                <a href=format!("/connections/{id}")>"Provider connection"</a>" · "
                <a href=format!("/connections/{id}/health")>"Checks and issues"</a>
            </p>
        </article>
    }
}

#[component]
fn Suites(d: DashboardView, run_now: Action<(i64, i64), Result<(), ApiError>>) -> impl IntoView {
    if d.suites.is_empty() {
        return view! { <p class="muted">{nothing_shown(&d)}</p> }.into_any();
    }
    view! {
        <div data-tab-panel="suites">
            <h2>"Suites by connection"</h2>
            {d.suites.into_iter().map(|s| view! { <Suite s run_now/> }).collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn Suite(s: SuiteView, run_now: Action<(i64, i64), Result<(), ApiError>>) -> impl IntoView {
    let (id, version) = (s.connection_id, s.version);
    let title = format!("{}: {}", s.company, s.suite.label());
    let button = s.runnable.then(|| view! {
        <button type="button" class="secondary" data-action="run-now" disabled=move || run_now.pending().get()
            on:click=move |_| { run_now.dispatch((id, version)); }>"Run now"</button>
    });
    view! {
        <section class="suite" data-testid="suite" data-suite=s.suite.as_str() data-connection=id>
            <h3>{title}</h3>
            <p class="muted" data-testid="schedule">{s.schedule.clone()}</p>
            {button}
            {if s.runs.is_empty() {
                view! { <p class="muted">"No runs yet."</p> }.into_any()
            } else {
                view! { <ul class="runs">{s.runs.into_iter().map(|r| view! { <Run r/> }).collect_view()}</ul> }.into_any()
            }}
        </section>
    }
}

#[component]
fn Run(r: ScanRunView) -> impl IntoView {
    // The stored word for tests and styles; the label for people.
    let outcome = r.outcome.clone().unwrap_or_else(|| "running".into());
    let took = r
        .finished_at
        .map(|end| format!(", {} ms", (end - r.started_at).num_milliseconds()))
        .unwrap_or_default();
    let summary = format!(
        "{} · {} · {}{took} · {}",
        fmt_time(r.started_at),
        r.suite_label(),
        r.outcome_label(),
        crate::model::counted(r.issue_count(), "issue", "issues")
    );
    view! {
        <li data-testid="run" data-outcome=outcome.clone()>
            <details>
                <summary>{summary}</summary>
                <table class="compact">
                    <thead><tr><th>"Check"</th><th>"Result"</th><th class="num">"Duration"</th></tr></thead>
                    <tbody>
                        {r.results.iter().map(|c| view! {
                            <tr><td>{c.name.clone()}</td><td>{c.status.label()}</td><td class="num">{format!("{} ms", c.duration_ms)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        </li>
    }
}
