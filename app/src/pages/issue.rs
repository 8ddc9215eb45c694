//! An issue's detail: what was found and since when, how to fix it (with its knowledge article),
//! the record concerned, Validate & Resolve (a check's), Assign to me, Follow, Mute for a chosen
//! time, the activity notes, and the diagnostic report to download.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::{act_on_issue, issue_detail, me, rescan_check},
    components::status::{fmt_time, ErrorBanner, StatePill},
    model::{
        article_id, check_spec, Access, ApiError, IssueCommand, IssueDetail, IssueWork,
        MUTE_CHOICES,
    },
};

/// One of the page's commands, and whom it was for.
type Act = Action<IssueCommand, Result<IssueWork, ApiError>>;

#[component]
pub fn Issue() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(super::connection_id);
    let issue = move || params.with(|p| p.get("issue").unwrap_or_default());
    let act: Act = Action::new(move |command: &IssueCommand| {
        let command = command.clone();
        async move { act_on_issue(id(), issue(), command).await }
    });
    let recheck = Action::new(move |_: &()| async move { rescan_check(id(), issue()).await });
    let data = Resource::new(
        move || (id(), issue(), act.version().get(), recheck.version().get()),
        |(id, issue, _, _)| async move {
            let detail = issue_detail(id, issue).await?;
            let user = me().await?;
            Ok::<_, ApiError>((detail, user))
        },
    );
    let error = move || {
        act.value()
            .get()
            .and_then(Result::err)
            .or_else(|| recheck.value().get().and_then(Result::err))
    };
    view! {
        <Transition fallback=|| view! { <section class="card"><p class="muted">"Loading the issue…"</p></section> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok((d, user)) => {
                        let email = user.as_ref().map(|u| u.email.clone()).unwrap_or_default();
                        let manage = user.as_ref().is_some_and(|u| u.may(Access::ManageConnection));
                        view! { <Detail d email manage act recheck/> }.into_any()
                    }
                    Err(e) => view! { <section class="card"><Title text=crate::model::page_title(&["Issue"])/><h1>"Issue"</h1><ErrorBanner error=e/></section> }.into_any(),
                }
            })}
        </Transition>
        {move || error().map(|e| view! { <section class="card"><ErrorBanner error=e/></section> })}
    }
}

#[component]
fn Detail(
    d: IssueDetail,
    email: String,
    manage: bool,
    act: Act,
    recheck: Action<(), Result<crate::model::ScanRunView, ApiError>>,
) -> impl IntoView {
    let conn = d.connection.clone();
    let work = d.work.clone();
    let follows = work.follows(&email);
    let muted = work.muted_until.filter(|_| work.muted);
    let is_check = check_spec(&d.issue).is_some();
    let report = format!("/api/connections/{}/issues/{}/report", conn.id, d.issue);
    let note = RwSignal::new(String::new());
    let minutes = RwSignal::new(MUTE_CHOICES[0].0);
    let status = match &d.open {
        Some(o) => view! {
            <div class="banner error" role="alert" data-testid="issue-open">
                {format!("Open: {} First detected {}, last detected {}, seen {}.", o.message, fmt_time(o.first_seen), fmt_time(o.last_seen), crate::model::counted(o.times_seen, "time", "times"))}
            </div>
        }
        .into_any(),
        None => view! { <div class="banner ok" role="status" data-testid="issue-resolved">"Not detected now: resolved."</div> }.into_any(),
    };
    let article = d.article.clone().map(|a| {
        let href = format!("/help/{}", article_id(&a));
        view! { <p>"Knowledge article: " <a href=href data-testid="article-link">{a}</a></p> }
    });
    let notes = work
        .notes
        .iter()
        .map(|n| view! { <li><span class="muted">{format!("{} · {}", fmt_time(n.at), n.author)}</span><br/>{n.text.clone()}</li> })
        .collect_view();
    let busy = move || act.pending().get();
    view! {
        <section class="card" data-testid="issue" data-issue=d.issue.clone()>
            <Title text=crate::model::page_title(&[&d.name, &conn.company])/>
            <h1>{d.name.clone()}</h1>
            <p>
                <a href=format!("/connections/{}", conn.id)>{format!("{} · {}", conn.company, conn.url)}</a>
                " " <StatePill state=conn.state/>
                " · " <a href=format!("/connections/{}/health", conn.id)>"Its checks"</a>
                " · " <a href="/health">"Health Dashboard"</a>
            </p>
            <p class="muted">{format!("{} severity · {}", d.severity.label(), d.category)}</p>
            {status}
            <h2>"How to fix it"</h2>
            <ol>{d.resolution.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ol>
            {article}
            {is_check.then(|| view! {
                <div class="actions">
                    <button type="button" class="secondary" data-action="validate-resolve" disabled=move || recheck.pending().get()
                        on:click=move |_| { recheck.dispatch(()); }>"Validate & Resolve"</button>
                </div>
            })}
            {move || recheck.value().get().and_then(Result::ok).map(|run| view! {
                <p role="status" data-testid="recheck">{if run.passed() { "Resolved: the check passes now." } else { "Still detected." }}</p>
            })}
        </section>
        <section class="card">
            <h2>"Workflow"</h2>
            <dl class="fields">
                <dt>"Assigned to"</dt><dd data-testid="assignee">{work.assignee.clone().unwrap_or_else(|| "nobody".into())}</dd>
                <dt>"Followers"</dt><dd data-testid="followers">{if work.followers.is_empty() { "none".to_string() } else { work.followers.join(", ") }}</dd>
                <dt>"Muted"</dt><dd data-testid="muted">{muted.map_or_else(|| "no".to_string(), |u| format!("until {}", fmt_time(u)))}</dd>
            </dl>
            <div class="actions">
                {if follows {
                    view! { <button type="button" class="secondary" disabled=busy on:click=move |_| { act.dispatch(IssueCommand::Unfollow); }>"Unfollow"</button> }.into_any()
                } else {
                    view! { <button type="button" class="secondary" disabled=busy on:click=move |_| { act.dispatch(IssueCommand::Follow); }>"Follow"</button> }.into_any()
                }}
                {manage.then(|| view! {
                    <button type="button" class="secondary" disabled=busy on:click=move |_| { act.dispatch(IssueCommand::AssignToMe); }>"Assign to me"</button>
                })}
                <a class="button secondary" href=report download data-testid="report">"Download diagnostic report"</a>
            </div>
            {manage.then(|| view! {
                <div class="actions">
                    <label for="mute-for">"Mute for"</label>
                    <select id="mute-for" on:change=move |ev| { if let Ok(m) = event_target_value(&ev).parse() { minutes.set(m); } }>
                        {MUTE_CHOICES.iter().map(|(m, label)| view! { <option value=m.to_string()>{*label}</option> }).collect_view()}
                    </select>
                    <button type="button" class="secondary" disabled=busy on:click=move |_| { act.dispatch(IssueCommand::Mute { minutes: minutes.get_untracked() }); }>"Mute"</button>
                    {muted.is_some().then(|| view! {
                        <button type="button" class="secondary" disabled=busy on:click=move |_| { act.dispatch(IssueCommand::Unmute); }>"Unmute"</button>
                    })}
                </div>
            })}
            <h3>"Activity"</h3>
            <ul class="notes" data-testid="notes">{notes}</ul>
            {manage.then(|| view! {
                <form on:submit=move |ev| {
                    ev.prevent_default();
                    act.dispatch(IssueCommand::Note { text: note.get_untracked() });
                    note.set(String::new());
                }>
                    <label for="note">"Add a note"</label>
                    <textarea id="note" rows="3" maxlength="2000" prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev))></textarea>
                    <div class="actions"><button type="submit" disabled=busy>"Add note"</button></div>
                </form>
            })}
        </section>
    }
}
