//! "Off-board" on the Provider connection: a confirmation the IDI admin fills in by typing
//! "Delete" (the model decides when it is typed), with what off-boarding does said first.
use leptos::prelude::*;

use crate::{
    api::off_board_connection,
    components::{
        outcome::{described_by, unplaced, FieldMessage},
        status::ErrorBanner,
    },
    model::{
        check_off_board_confirmation, ApiError, ConnectionView, OffBoardConnection,
        OFF_BOARD_CONFIRMATION,
    },
};

/// The error code of a provider that could not be reached (`ServiceError::Provider`).
const PROVIDER_UNAVAILABLE: &str = "provider_unavailable";

#[component]
pub fn OffBoardConfirm(
    id: i64,
    current: Memo<ConnectionView>,
    /// Closes the panel (Cancel).
    open: RwSignal<bool>,
    /// Bumped after the record changed, so the page reads it again.
    changed: RwSignal<u32>,
) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let without_provider = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let send = Action::new(move |req: &OffBoardConnection| {
        let req = req.clone();
        async move { off_board_connection(id, req).await }
    });
    Effect::new(move |_| match send.value().get() {
        Some(Ok(_)) => {
            error.set(None);
            // The record is read again first; closing the panel disposes this component.
            changed.update(|n| *n += 1);
            open.set(false);
        }
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });
    let confirmed = move || typed.with(|t| check_off_board_confirmation(t).is_ok());
    // Offered once the provider could not be told: going on without it is a choice, not a default.
    let unreachable = move || {
        without_provider.get()
            || error.with(|e| e.as_ref().is_some_and(|e| e.code == PROVIDER_UNAVAILABLE))
    };
    let error_signal: Signal<Option<ApiError>> = error.into();
    view! {
        <section class="card danger-zone" data-testid="off-board" aria-labelledby="off-board-title">
            <h2 id="off-board-title">"Off-board this connection"</h2>
            <p>
                "The provider is told to forget this connection, its credentials are revoked and erased here, and Outbound and Inbound go blank. "
                "The record and its history stay here to read, and the company can be connected again from a fresh registration link."
            </p>
            <form
                class="fields"
                on:submit=move |ev| {
                    ev.prevent_default();
                    send.dispatch(OffBoardConnection {
                        version: current.get_untracked().version,
                        confirm: typed.get_untracked(),
                        without_provider: without_provider.get_untracked(),
                    });
                }
            >
                <label for="off-board-confirm">{format!("Type {OFF_BOARD_CONFIRMATION} to confirm")}</label>
                <div>
                    <input
                        id="off-board-confirm"
                        type="text"
                        autocomplete="off"
                        spellcheck="false"
                        maxlength="32"
                        aria-describedby=described_by(error_signal, OffBoardConnection::CONFIRM_FIELD, "off-board-confirm")
                        prop:value=move || typed.get()
                        on:input=move |ev| typed.set(event_target_value(&ev))
                    />
                    <FieldMessage error=error_signal field=OffBoardConnection::CONFIRM_FIELD input="off-board-confirm"/>
                </div>
                <Show when=unreachable>
                    <span></span>
                    <label class="check">
                        <input
                            type="checkbox"
                            data-testid="without-provider"
                            prop:checked=move || without_provider.get()
                            on:change=move |ev| without_provider.set(event_target_checked(&ev))
                        />
                        " The provider is gone for good: off-board without telling it"
                    </label>
                </Show>
                <span></span>
                <div class="actions">
                    <button type="submit" class="danger" data-action="confirm-off-board"
                        disabled=move || !confirmed() || send.pending().get()>
                        "Off-board"
                    </button>
                    <button type="button" class="secondary" on:click=move |_| open.set(false)>"Cancel"</button>
                </div>
            </form>
            {move || unplaced(error.get(), &[OffBoardConnection::CONFIRM_FIELD]).map(|e| view! { <ErrorBanner error=e/> })}
        </section>
    }
}
