//! User management, for Impact app admins: create users, set roles, disable.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::{change_user, create_user, list_users},
    components::{
        outcome::{described_by, invalid, unplaced, FieldMessage},
        status::ErrorBanner,
        table::TableScroll,
    },
    model::{NewUser, Role, UserChange, UserView},
};

#[component]
pub fn Users() -> impl IntoView {
    let (email, set_email) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let roles = RwSignal::new(vec![Role::ImpactUser]);
    let create = Action::new(|new: &NewUser| {
        let new = new.clone();
        async move { create_user(new).await }
    });
    let change = Action::new(|(id, c): &(i64, UserChange)| {
        let (id, c) = (*id, c.clone());
        async move { change_user(id, c).await }
    });
    let error = Signal::derive(move || create.value().get().and_then(|r| r.err()));
    let users = Resource::new(
        move || (create.version().get(), change.version().get()),
        |_| list_users(),
    );
    view! {
        <section class="card">
            <Title text=crate::model::page_title(&["Users"])/>
            <h1>"Users"</h1>
            <form class="fields" aria-label="New user" on:submit=move |ev| {
                ev.prevent_default();
                create.dispatch(NewUser { email: email.get_untracked(), password: password.get_untracked(), roles: roles.get_untracked() });
            }>
                <label for="user-email">"Email"</label>
                <input id="user-email" type="email" required prop:value=email on:input=move |ev| set_email.set(event_target_value(&ev))
                    aria-describedby=described_by(error, "email", "user-email") aria-invalid=move || invalid(error, "email")().to_string()/>
                <FieldMessage error field="email" input="user-email"/>
                <label for="user-password">"Password"</label>
                <input id="user-password" type="password" required prop:value=password on:input=move |ev| set_password.set(event_target_value(&ev))
                    aria-describedby=described_by(error, "password", "user-password") aria-invalid=move || invalid(error, "password")().to_string()/>
                <FieldMessage error field="password" input="user-password"/>
                <span class="label" id="user-roles-label">"Roles"</span>
                <div role="group" id="user-roles" tabindex="-1" aria-labelledby="user-roles-label"
                    aria-describedby=described_by(error, "roles", "user-roles")>
                    {Role::ALL.into_iter().map(|r| view! { <RoleBox role=r roles/> }).collect_view()}
                </div>
                <FieldMessage error field="roles" input="user-roles"/>
                <span></span>
                <div><button type="submit" disabled=move || create.pending().get()>"Create user"</button></div>
            </form>
            {move || unplaced(error.get(), &["email", "password", "roles"]).map(|e| view! { <ErrorBanner error=e/> })}
            {move || change.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
        </section>
        <section class="card">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Ok(list) => view! {
                            <TableScroll label="Users">
                                <table data-testid="users">
                                <thead><tr><th>"Email"</th><th>"Roles"</th><th>"Status"</th><th><span class="visually-hidden">"Save changes"</span></th></tr></thead>
                                <tbody>{list.into_iter().map(|u| view! { <UserRow user=u change/> }).collect_view()}</tbody>
                                </table>
                            </TableScroll>
                        }.into_any(),
                        Err(e) => view! { <ErrorBanner error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn RoleBox(role: Role, roles: RwSignal<Vec<Role>>) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" prop:checked=move || roles.with(|r| r.contains(&role))
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    roles.update(|r| {
                        r.retain(|x| *x != role);
                        if on { r.push(role); }
                    });
                }/>
            {role.label()}
        </label>
    }
}

#[component]
fn UserRow(
    user: UserView,
    change: Action<(i64, UserChange), Result<UserView, crate::model::ApiError>>,
) -> impl IntoView {
    let roles = RwSignal::new(user.roles.clone());
    let disabled = RwSignal::new(user.disabled);
    let id = user.id;
    view! {
        <tr data-email=user.email.clone()>
            <td data-label="Email">{user.email.clone()}</td>
            <td data-label="Roles">{Role::ALL.into_iter().map(|r| view! { <RoleBox role=r roles/> }).collect_view()}</td>
            <td data-label="Status">
                <label class="check">
                    <input type="checkbox" prop:checked=disabled on:change=move |ev| disabled.set(event_target_checked(&ev))/>
                    "Disabled"
                </label>
            </td>
            <td>
                <button type="button" class="secondary"
                    on:click=move |_| { change.dispatch((id, UserChange { roles: roles.get_untracked(), disabled: disabled.get_untracked() })); }>
                    "Save"
                </button>
            </td>
        </tr>
    }
}
