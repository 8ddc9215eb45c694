//! The health dashboard for one connection: score, open issues with what was found and how to fix
//! it, every check's latest result, Rescan (one check or the whole suite), and the scan history.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::{act_on_connection, connection_health, rescan_check},
    components::{
        live::{self, LinkNotice, Live},
        outcome::{Kind, Outcome},
        status::{fmt_time, ErrorBanner, StatePill},
        table::TableScroll,
    },
    model::{health_changes, Action as Step, ConnectionAction, ScanRunView},
};

#[component]
pub fn Health() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(super::connection_id);
    let rescan_one = Action::new(move |check: &String| {
        let check = check.clone();
        async move { rescan_check(id(), check).await }
    });
    let rescan_all = Action::new(move |version: &i64| {
        let req = ConnectionAction {
            action: Step::Rescan,
            version: *version,
        };
        async move { act_on_connection(id(), req).await.map(|_| ()) }
    });
    // Reload whenever a scan finishes (the live stream says so) or a re-check returns.
    let live = Live::new();
    Effect::new(move |prev: Option<i64>| {
        let id = id();
        if prev != Some(id) && id > 0 {
            live::connect(id, live);
        }
        id
    });
    let finished_scans = Memo::new(move |_| live.events.with(|log| health_changes(log)));
    let data = Resource::new(
        move || {
            (
                id(),
                rescan_one.version().get(),
                rescan_all.version().get(),
                finished_scans.get(),
            )
        },
        |(id, _, _, _)| connection_health(id),
    );
    let error = move || {
        rescan_one
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| rescan_all.value().get().and_then(|r| r.err()))
    };
    view! {
        <Suspense fallback=|| view! { <section class="card"><p class="muted">"Loading health…"</p></section> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(h) => {
                        let conn = h.connection.clone();
                        let conn_id = conn.id;
                        let version = conn.version;
                        let issues = h.issues();
                        let can_rescan = crate::model::transition(conn.status(), Step::Rescan).is_ok();
                        view! {
                            <section class="card">
                                <Title text=crate::model::page_title(&["Health Dashboard", &conn.company])/>
                                <h1>"Health Dashboard"</h1>
                                <LinkNotice link=live.link/>
                                <p>
                                    <a href=format!("/connections/{}", conn.id)>{format!("{} · {}", conn.company, conn.url)}</a>
                                    " " <StatePill state=conn.state/>
                                </p>
                                <p><span class="score" data-testid="score">{h.score}</span><span class="muted">" / 100 health score"</span></p>
                                {crate::model::csm_advice(h.failed_validations_in_a_row()).map(|advice| view! {
                                    <div class="banner error" role="alert" data-testid="csm-advice">{advice}</div>
                                })}
                                {if issues.is_empty() {
                                    view! { <div class="banner ok" role="status" data-testid="no-issues">"Scan complete with no issues."</div> }.into_any()
                                } else {
                                    view! { <div class="banner error" role="alert">{format!("{} open", crate::model::counted(issues.len(), "issue", "issues"))}</div> }.into_any()
                                }}
                                <div class="actions">
                                    <button type="button" data-testid="rescan-all" disabled=move || !can_rescan || rescan_all.pending().get()
                                        on:click=move |_| { rescan_all.dispatch(version); }>
                                        "Rescan"
                                    </button>
                                </div>
                                {move || rescan_all.value().get().and_then(|r| r.ok()).map(|_| view! {
                                    <Outcome kind=Kind::Ok testid="rescan-started">"Rescan started: the checks below update as each one finishes."</Outcome>
                                })}
                                {move || error().map(|e| view! { <ErrorBanner error=e/> })}
                            </section>
                            <section class="card">
                                <h2>"Open issues"</h2>
                                {issues.into_iter().map(|c| {
                                    let check = c.check_id.clone();
                                    let title_id = format!("issue-{}-title", c.check_id);
                                    view! {
                                        <article class=format!("issue {}", c.severity.as_db()) data-testid="issue" data-check=c.check_id.clone()
                                            aria-labelledby=title_id.clone()>
                                            <h3 id=title_id.clone()>{c.name.clone()}</h3>
                                            <p>
                                                <span class=format!("pill {}", c.status.tone().class())>{c.status.label()}</span>
                                                " " <span class="muted">{format!("{} severity · last detected {}", c.severity.label(), fmt_time(c.at))}</span>
                                            </p>
                                            <p data-testid="found">{c.message.clone()}</p>
                                            <h4>"How to fix it"</h4>
                                            <ol>{c.resolution.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ol>
                                            {crate::model::fix_link(&c.check_id).map(|(label, href)| view! {
                                                <p><a href=href data-testid="fix-link">{label}</a></p>
                                            })}
                                            <p><a href=format!("/connections/{conn_id}/issues/{}", c.check_id) data-testid="issue-details">"Details: assign, follow, mute, notes, diagnostic report"</a></p>
                                            <p class="muted">{format!("Knowledge article: {}", c.article)}
                                                {c.retryable.then_some(" · Retrying may help (the provider was down or slow).")}</p>
                                            <button type="button" class="secondary" data-testid="validate-resolve"
                                                disabled=move || rescan_one.pending().get()
                                                on:click=move |_| { rescan_one.dispatch(check.clone()); }>
                                                "Validate & Resolve"
                                            </button>
                                        </article>
                                    }
                                }).collect_view()}
                                {move || rescan_one.value().get().and_then(|r| r.ok()).map(|run: ScanRunView| {
                                    let text = if run.passed() { "Resolved: the check passes now." } else { "Still detected." };
                                    view! { <Outcome kind=Kind::Warn testid="recheck">{text}</Outcome> }
                                })}
                            </section>
                            <section class="card">
                                <h2>"All checks"</h2>
                                <TableScroll label="All checks">
                                    <table data-testid="checks">
                                    <thead><tr><th>"Check"</th><th>"Severity"</th><th>"Status"</th><th>"Found"</th><th>"Time"</th></tr></thead>
                                    <tbody>
                                        {h.checks.iter().map(|c| view! {
                                            <tr data-check=c.check_id.clone()>
                                                <td data-label="Check">{c.name.clone()}</td>
                                                <td data-label="Severity">{c.severity.label()}</td>
                                                <td data-label="Status"><span class=c.status.tone().class()>{c.status.label()}</span></td>
                                                <td data-label="Found" class="long">{c.message.clone()}</td>
                                                <td data-label="Time">{format!("{} ms", c.duration_ms)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                    </table>
                                </TableScroll>
                            </section>
                            <section class="card">
                                <h2>"Scan history"</h2>
                                <TableScroll label="Scan history">
                                    <table data-testid="runs">
                                    <thead><tr><th>"Started"</th><th>"Suite"</th><th>"Outcome"</th><th>"Issues"</th></tr></thead>
                                    <tbody>
                                        {h.runs.iter().map(|r| view! {
                                            <tr>
                                                <td data-label="Started">{fmt_time(r.started_at)}</td>
                                                <td data-label="Suite">{r.suite_label()}</td>
                                                <td data-label="Outcome">{r.outcome_label()}</td>
                                                <td data-label="Issues">{r.issue_count()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                    </table>
                                </TableScroll>
                            </section>
                        }.into_any()
                    }
                    Err(e) => view! { <section class="card"><Title text=crate::model::page_title(&["Health Dashboard"])/><h1>"Health Dashboard"</h1><ErrorBanner error=e/></section> }.into_any(),
                }
            })}
        </Suspense>
    }
}
