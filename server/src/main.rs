//! `impact-connect`: serves the app on LEPTOS_SITE_ADDR with the database at DATABASE_URL.

use server::{config::Config, startup::Application, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let config = Config::from_env()?;
    let app = Application::build(config).await?;
    println!("Impact Connect is running at http://{}", app.address());
    match &app.setup_link {
        Some(link) => println!("First start: create the first administrator at {link}"),
        None => println!("Sign in at http://{}/login", app.address()),
    }
    app.run_until_stopped().await
}
