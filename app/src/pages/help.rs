//! A knowledge article: the checks it covers, what each looks for and how to fix what it finds,
//! from the checks' own catalogue (`model::CHECKS`).
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::model::article_checks;

#[component]
pub fn Help() -> impl IntoView {
    let params = use_params_map();
    let article = move || params.with(|p| p.get("article").unwrap_or_default());
    move || {
        let id = article();
        let checks = article_checks(&id);
        let Some(first) = checks.first() else {
            return view! {
                <section class="card">
                    <Title text=crate::model::page_title(&["Knowledge article not found"])/>
                    <h1>"Knowledge article not found"</h1>
                    <p>"There is no knowledge article with this reference. The " <a href="/health">"Health Dashboard"</a> " links each issue to its own."</p>
                </section>
            }
            .into_any();
        };
        let title = first.article.to_string();
        view! {
            <section class="card" data-testid="article">
                <Title text=crate::model::page_title(&[&title])/>
                <h1>{title.clone()}</h1>
                {checks.iter().map(|c| view! {
                    <h2>{c.name}</h2>
                    <p class="muted">{format!("{} severity", c.severity.label())}</p>
                    <h3>"How to fix it"</h3>
                    <ol>{c.resolution.iter().map(|s| view! { <li>{*s}</li> }).collect_view()}</ol>
                }).collect_view()}
                <p><a href="/health">"Back to the Health Dashboard"</a></p>
            </section>
        }
        .into_any()
    }
}
