//! The scan suites' catalogue and result shapes, shared by the server (which runs the checks)
//! and the health dashboard (which explains them).
use serde::{Deserialize, Serialize};

use super::{labels::labelled_enum, Onboarding};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

// The strings are serde's names and the dashboard's CSS classes.
labelled_enum! {
    Severity { as_db, from_db, label }
    Critical => "critical", "Critical";
    High => "high", "High";
    Medium => "medium", "Medium";
    Low => "low", "Low";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Passed,
    /// The check ran and found a problem.
    Failed,
    /// The check could not tell (an unexpected answer): shown, marked unknown.
    Error,
    /// Not run because a check it depends on did not pass.
    Skipped,
}

labelled_enum! {
    CheckStatus { as_db, from_db, label }
    Passed => "passed", "Passed";
    Failed => "failed", "Failed";
    Error => "error", "Unknown error";
    Skipped => "skipped", "Skipped";
}

impl CheckStatus {
    /// Whether it is an open issue on the dashboard.
    pub fn is_issue(self) -> bool {
        matches!(self, CheckStatus::Failed | CheckStatus::Error)
    }
}

/// A check's identity. The strings (`as_str`) are stored in the database and sent in JSON and
/// events, so they never change; the enum lets the server handle every check by name, and the
/// compiler says when one is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckId {
    Url,
    BaseUrl,
    KeyManagement,
    CompanyUnique,
    Reachable,
    Tls,
    Protocol,
    Clock,
    AppVersions,
    Registration,
    Credentials,
    Entitlements,
    EntitlementIdentity,
    Inbound,
    Heartbeat,
    TlsExpiry,
}

impl CheckId {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Url => "url",
            CheckId::BaseUrl => "base_url",
            CheckId::KeyManagement => "key_management",
            CheckId::CompanyUnique => "company_unique",
            CheckId::Reachable => "reachable",
            CheckId::Tls => "tls",
            CheckId::Protocol => "protocol",
            CheckId::Clock => "clock",
            CheckId::AppVersions => "app_versions",
            CheckId::Registration => "registration",
            CheckId::Credentials => "credentials",
            CheckId::Entitlements => "entitlements",
            CheckId::EntitlementIdentity => "entitlement_identity",
            CheckId::Inbound => "inbound",
            CheckId::Heartbeat => "heartbeat",
            CheckId::TlsExpiry => "tls_expiry",
        }
    }

    /// The check with this stored id, if the catalogue has it.
    pub fn parse(s: &str) -> Option<Self> {
        CHECKS.iter().map(|c| c.id).find(|id| id.as_str() == s)
    }

    /// Its entry in the catalogue.
    pub fn spec(self) -> &'static CheckSpec {
        &CHECKS[self as usize]
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check in the catalogue: what it verifies and how to fix it when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSpec {
    pub id: CheckId,
    pub name: &'static str,
    pub severity: Severity,
    /// Checks that must pass first; if one does not, this one is skipped and says why.
    pub depends_on: &'static [CheckId],
    pub resolution: &'static [&'static str],
    /// Knowledge-article reference.
    pub article: &'static str,
}

pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: CheckId::Url,
        name: "Provider URL is well-formed",
        severity: Severity::Critical,
        depends_on: &[],
        resolution: &[
            "The URL comes from the registration link: open the link from your latest welcome email.",
            "If the URL itself is wrong, ask your Impact Squad to initiate the registration again with the right instance.",
        ],
        article: "KB-IC-1001 Provider URL requirements",
    },
    CheckSpec {
        id: CheckId::BaseUrl,
        name: "This instance's own base URL is set",
        severity: Severity::High,
        depends_on: &[],
        resolution: &[
            "Set IMPACT_PUBLIC_URL to the address the provider can reach this instance at (for example https://store.example.com).",
            "Restart the app, then Rescan.",
        ],
        article: "KB-IC-1002 Setting the instance base URL",
    },
    CheckSpec {
        id: CheckId::KeyManagement,
        name: "Key management is healthy",
        severity: Severity::Critical,
        depends_on: &[],
        resolution: &[
            "The signing key could not be read or is too short. Check IMPACT_LINK_KEY (at least 32 characters) or the settings table.",
            "Errors that look like credential problems are often this: fix the key first, then Rescan.",
        ],
        article: "KB-IC-1003 Key management and crypto access",
    },
    CheckSpec {
        id: CheckId::CompanyUnique,
        name: "The company has no other connection",
        severity: Severity::High,
        depends_on: &[],
        resolution: &[
            "Each instance needs its own company. Select another company on the Provider connection form, or add a new one, then Save.",
        ],
        article: "KB-IC-1004 One company per instance",
    },
    CheckSpec {
        id: CheckId::Reachable,
        name: "Provider is reachable",
        severity: Severity::Critical,
        depends_on: &[CheckId::Url],
        resolution: &[
            "Check that the provider instance is up (ask your Impact Squad) and that this server can reach it: DNS, firewall, proxy.",
            "The message says which failed: a name that does not resolve is DNS; a refused connection means nothing listens there; a timeout points to a firewall or an overloaded provider.",
            "Then Rescan.",
        ],
        article: "KB-IC-1010 Provider reachability",
    },
    CheckSpec {
        id: CheckId::Tls,
        name: "TLS connection is valid",
        severity: Severity::High,
        depends_on: &[CheckId::Url],
        resolution: &[
            "The provider's certificate must be valid for its host name and trusted. Ask your Impact Squad to renew or fix it.",
        ],
        article: "KB-IC-1011 TLS requirements",
    },
    CheckSpec {
        id: CheckId::Protocol,
        name: "Protocol version is compatible",
        severity: Severity::Critical,
        depends_on: &[CheckId::Reachable],
        resolution: &[
            "This app speaks provider protocol version 1. Ask your Impact Squad which version the provider runs, and upgrade whichever side is behind.",
        ],
        article: "KB-IC-1012 Protocol versions",
    },
    CheckSpec {
        id: CheckId::Clock,
        name: "Clocks are in sync",
        severity: Severity::High,
        depends_on: &[CheckId::Protocol],
        resolution: &[
            "Signed requests are refused when the clocks differ by more than 5 minutes; this check warns above 60 seconds.",
            "Enable NTP time synchronisation on this server (and ask the provider to check theirs), then Rescan.",
        ],
        article: "KB-IC-1013 Clock synchronisation",
    },
    CheckSpec {
        id: CheckId::AppVersions,
        name: "Dependent applications are at compatible versions",
        severity: Severity::Medium,
        depends_on: &[CheckId::Protocol],
        resolution: &[
            "The provider needs Impact core 3.0 or later and Service Exchange 2.0 or later. Ask your Impact Squad to upgrade the provider instance.",
        ],
        article: "KB-IC-1014 Dependent application versions",
    },
    CheckSpec {
        id: CheckId::Registration,
        name: "Registration is valid",
        severity: Severity::Critical,
        depends_on: &[CheckId::Protocol],
        resolution: &[
            "The registration code from the welcome email was refused by the provider (unknown, or already used by an earlier attempt).",
            "Send a fresh registration link (Instance registration, or ask your Impact Squad), open it, and select \"Re-register this connection\": its new code replaces the used one.",
        ],
        article: "KB-IC-1020 Registration codes",
    },
    CheckSpec {
        id: CheckId::Credentials,
        name: "Connection credentials are accepted",
        severity: Severity::Critical,
        depends_on: &[CheckId::Registration, CheckId::Clock],
        resolution: &[
            "The provider refused this connection's signed requests. The credentials may have been revoked, or the instance was cloned.",
            "Ask your Impact Squad to check the consumer record on the provider, then Rescan; if they were revoked, open a fresh registration link and select \"Re-register this connection\" for new credentials.",
        ],
        article: "KB-IC-1021 Connection credentials",
    },
    CheckSpec {
        id: CheckId::Entitlements,
        name: "Entitlements exist and are active",
        severity: Severity::High,
        depends_on: &[CheckId::Credentials],
        resolution: &[
            "The provider has no active entitlement for this consumer (missing, pending approval, or inactive).",
            "Ask your Impact Squad to grant or approve the entitlements for your company, then Rescan.",
        ],
        article: "KB-IC-1022 Entitlements",
    },
    CheckSpec {
        id: CheckId::EntitlementIdentity,
        name: "Entitlements reference a valid entity and identity",
        severity: Severity::Medium,
        depends_on: &[CheckId::Entitlements],
        resolution: &["Some entitlements lack their entity or identity on the provider. Ask your Impact Squad to correct them."],
        article: "KB-IC-1023 Entitlement records",
    },
    CheckSpec {
        id: CheckId::Inbound,
        name: "The provider can reach this instance",
        severity: Severity::High,
        depends_on: &[CheckId::Credentials],
        resolution: &[
            "The provider could not call this instance's inbound endpoint (/inbound/v1/ping).",
            "Make sure the base URL is reachable from the provider (firewall, reverse proxy, TLS), then Rescan.",
        ],
        article: "KB-IC-1024 Inbound connectivity",
    },
    CheckSpec {
        id: CheckId::Heartbeat,
        name: "Heartbeat: the provider answers and calls back",
        severity: Severity::Critical,
        depends_on: &[CheckId::Credentials],
        resolution: &[
            "The provider did not answer this instance's heartbeat, or its heartbeat call back did not arrive. The message says which.",
            "No answer: check that the provider instance is up (ask your Impact Squad). No call back: make sure the provider can still reach this instance's base URL (firewall, reverse proxy, TLS).",
            "Then Rescan. If it stays Down, contact your Customer Service Manager.",
        ],
        article: "KB-IC-1030 Connection heartbeat",
    },
    CheckSpec {
        id: CheckId::TlsExpiry,
        name: "TLS certificate is not about to expire",
        severity: Severity::Medium,
        depends_on: &[CheckId::Tls],
        resolution: &[
            "The provider's TLS certificate expires soon; when it does, every call to the provider fails and the connection goes Down.",
            "Ask your Impact Squad to renew the provider instance's certificate before the date given, then Rescan.",
        ],
        article: "KB-IC-1031 Certificate renewal",
    },
];

/// A certificate that expires within this many days is reported by the connection health suite.
pub const TLS_EXPIRY_WARN_DAYS: i64 = 14;

/// The two scan suites. Before onboarding, the pre-onboarding suite proves the link can be made
/// (its verdict is Validated or Validation failed); once onboarded, the connection health suite
/// proves it still works (its findings set Outbound and Inbound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Suite {
    PreOnboarding,
    ConnectionHealth,
}

labelled_enum! {
    Suite { as_str, parse, label }
    PreOnboarding => "pre_onboarding", "Pre-onboarding checks";
    ConnectionHealth => "connection_health", "Connection health checks";
}

impl Suite {
    /// The suite a Rescan of a connection at this onboarding stage runs.
    pub fn for_onboarding(onboarding: Onboarding) -> Self {
        match onboarding {
            Onboarding::Complete => Suite::ConnectionHealth,
            _ => Suite::PreOnboarding,
        }
    }

    /// Whether the suite runs this check. Registration belongs to making the link (its code is
    /// used once) and the one-company rule to choosing it; the heartbeat needs an onboarded link.
    pub fn includes(self, id: CheckId) -> bool {
        match self {
            // Both watch a link that exists: the heartbeat, and the certificate's date ahead.
            Suite::PreOnboarding => !matches!(id, CheckId::Heartbeat | CheckId::TlsExpiry),
            Suite::ConnectionHealth => {
                !matches!(id, CheckId::Registration | CheckId::CompanyUnique)
            }
        }
    }

    /// Checks of the other suite that this suite's checks depend on, counted as passed: an
    /// onboarded connection registered once, and its credentials stand for that.
    pub fn settled(self) -> &'static [CheckId] {
        match self {
            Suite::PreOnboarding => &[],
            Suite::ConnectionHealth => &[CheckId::Registration],
        }
    }
}

// The catalogue lists the ids in their declaration order, each once: `CheckId::spec` indexes it.
const _: () = {
    let mut i = 0;
    while i < CHECKS.len() {
        assert!(
            CHECKS[i].id as usize == i,
            "CHECKS must list the check ids in the order CheckId declares them"
        );
        i += 1;
    }
};

/// Where a check's fix is done in this app when it is not the connection form: the link's words
/// and address. A used registration code or revoked credentials are repaired by re-registering
/// with a fresh registration link, which Instance registration sends.
pub fn fix_link(check_id: &str) -> Option<(&'static str, &'static str)> {
    match check_spec(check_id)?.id {
        CheckId::Registration | CheckId::Credentials => Some((
            "Send a fresh registration link to re-register",
            "/registrations",
        )),
        _ => None,
    }
}

pub fn check_spec(id: &str) -> Option<&'static CheckSpec> {
    CheckId::parse(id).map(CheckId::spec)
}

/// The checks a run of `suite` needs: `only` with everything it depends on (transitively), or
/// every check of the suite when `only` is None; in catalogue order, so dependencies come first.
/// What the suite counts as settled (`Suite::settled`) is not run again, nor what it leaves out.
pub fn checks_for(suite: Suite, only: Option<CheckId>) -> Vec<&'static CheckSpec> {
    let Some(id) = only else {
        return CHECKS.iter().filter(|c| suite.includes(c.id)).collect();
    };
    if !suite.includes(id) {
        return Vec::new();
    }
    let mut wanted = vec![id];
    let mut i = 0;
    while i < wanted.len() {
        for d in wanted[i].spec().depends_on {
            if !wanted.contains(d) && !suite.settled().contains(d) {
                wanted.push(*d);
            }
        }
        i += 1;
    }
    CHECKS
        .iter()
        .filter(|c| wanted.contains(&c.id) && suite.includes(c.id))
        .collect()
}

/// The skip rule: whether `spec` is Skipped rather than run, given the status of each check
/// settled so far (`status`). It is skipped when any dependency did not pass, other than a
/// not-applicable one (Skipped without depending on anything, which counts as passed for its
/// dependants). Returns the first such dependency, which the skip message names.
pub fn skipped_because(
    spec: &CheckSpec,
    status: impl Fn(CheckId) -> Option<CheckStatus>,
) -> Option<&'static CheckSpec> {
    spec.depends_on
        .iter()
        .copied()
        .find(|d| !clears(*d, status(*d)))
        .map(CheckId::spec)
}

/// Whether a check with this settled status lets what depends on it go ahead: it passed, or it
/// does not apply here (Skipped without depending on anything). Not settled does not.
pub fn clears(id: CheckId, status: Option<CheckStatus>) -> bool {
    match status {
        Some(CheckStatus::Passed) => true,
        Some(CheckStatus::Skipped) => id.spec().depends_on.is_empty(),
        _ => false,
    }
}

/// One check's outcome in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CheckResult {
    pub check_id: String,
    pub name: String,
    pub severity: Severity,
    pub status: CheckStatus,
    /// What was found, in words a person can act on.
    pub message: String,
    /// How to fix it and where to read more (the catalogue's, `check_spec`); left out where a
    /// list of runs only names each result (`ScanRunView::brief`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolution: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub article: String,
    pub duration_ms: i64,
    /// Whether simply running it again may help (the provider was down or slow).
    pub retryable: bool,
    #[serde(with = "crate::model::time")]
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScanRunView {
    pub id: i64,
    /// The suite's fixed string (`Suite::as_str`) for a whole suite, or "check:<id>" for one check.
    pub suite: String,
    #[serde(with = "crate::model::time")]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::model::time::option", default)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// "passed", "failed", or None while running.
    pub outcome: Option<String>,
    pub results: Vec<CheckResult>,
}

impl ScanRunView {
    /// Finished with every check passing (or skipped).
    pub fn passed(&self) -> bool {
        self.outcome.as_deref() == Some("passed")
    }

    /// How it ended, in words: "Passed", "Failed", or "Running" while it runs.
    pub fn outcome_label(&self) -> &'static str {
        match self.outcome.as_deref() {
            None => "Running",
            Some("passed") => "Passed",
            Some(_) => "Failed",
        }
    }

    /// What ran, in words: the suite's label, or "Re-run: <check>" for one check.
    pub fn suite_label(&self) -> String {
        if let Some(suite) = Suite::parse(&self.suite) {
            return suite.label().to_string();
        }
        match self.suite.strip_prefix("check:").and_then(check_spec) {
            Some(spec) => format!("Re-run: {}", spec.name),
            None => self.suite.clone(),
        }
    }

    /// How many of its results are issues.
    pub fn issue_count(&self) -> usize {
        self.results.iter().filter(|c| c.status.is_issue()).count()
    }

    /// The run as a list of runs shows it: each result without its fix and article (the
    /// catalogue's text, the bulk of a result, read where one result is shown).
    pub fn brief(mut self) -> Self {
        for r in &mut self.results {
            r.resolution = Vec::new();
            r.article = String::new();
        }
        self
    }
}

/// The health dashboard for one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HealthView {
    pub connection: super::ConnectionView,
    /// Each check's latest result, issues first (by severity), then the rest.
    pub checks: Vec<CheckResult>,
    /// 0–100: passed checks weighted by severity, then by the heartbeat's health
    /// (`dashboard::connection_score`).
    pub score: i64,
    pub runs: Vec<ScanRunView>,
}

impl HealthView {
    /// How many of the latest finished pre-onboarding runs failed, newest first, until one
    /// passed (single-check re-runs and the connection health suite do not count).
    pub fn failed_validations_in_a_row(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.suite == Suite::PreOnboarding.as_str() && r.outcome.is_some())
            .take_while(|r| !r.passed())
            .count()
    }

    /// The open issues: checks whose latest result failed or could not tell, in dashboard order.
    pub fn issues(&self) -> Vec<CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.status.is_issue())
            .cloned()
            .collect()
    }
}

/// Health score: the share of severity weight that passed. Skipped checks are left out: either
/// they do not apply, or the check they wait on already counts as failed.
pub fn health_score(results: &[CheckResult]) -> i64 {
    let results: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.status != CheckStatus::Skipped)
        .collect();
    let weight = |s: Severity| match s {
        Severity::Critical => 8,
        Severity::High => 4,
        Severity::Medium => 2,
        Severity::Low => 1,
    };
    let total: i64 = results.iter().map(|r| weight(r.severity)).sum();
    if total == 0 {
        return 0;
    }
    let passed: i64 = results
        .iter()
        .filter(|r| r.status == CheckStatus::Passed)
        .map(|r| weight(r.severity))
        .sum();
    passed * 100 / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_code_and_revoked_credentials_are_fixed_by_re_registering() {
        for id in ["registration", "credentials"] {
            let (label, href) = fix_link(id).expect(id);
            assert_eq!(href, "/registrations");
            assert!(label.contains("re-register"), "{label}");
            let spec = check_spec(id).expect(id);
            assert!(
                spec.resolution
                    .iter()
                    .any(|r| r.contains("Re-register this connection")),
                "{id}"
            );
        }
        assert_eq!(fix_link("tls"), None);
        assert_eq!(fix_link("no such check"), None);
    }

    #[test]
    fn a_brief_run_names_its_results_and_reads_back_without_their_guidance() {
        let spec = check_spec("url").expect("url");
        let result = CheckResult {
            check_id: "url".into(),
            name: spec.name.into(),
            severity: spec.severity,
            status: CheckStatus::Failed,
            message: "not a URL".into(),
            resolution: spec.resolution.iter().map(|r| r.to_string()).collect(),
            article: spec.article.into(),
            duration_ms: 3,
            retryable: false,
            at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
        };
        let run = ScanRunView {
            id: 1,
            suite: "pre_onboarding".into(),
            started_at: result.at,
            finished_at: None,
            outcome: Some("failed".into()),
            results: vec![result.clone()],
        };
        let full = serde_json::to_string(&run).unwrap_or_default();
        let brief = run.clone().brief();
        let json = serde_json::to_string(&brief).unwrap_or_default();
        assert!(
            full.contains("resolution")
                && !json.contains("resolution")
                && !json.contains("article")
        );
        assert!(json.len() < full.len());
        let back: ScanRunView = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, brief);
        assert_eq!(
            (back.issue_count(), back.results[0].name.as_str()),
            (1, spec.name)
        );
    }

    #[test]
    fn the_catalogue_is_consistent() {
        assert!(CHECKS.len() >= 10);
        for (i, c) in CHECKS.iter().enumerate() {
            assert!(
                !c.resolution.is_empty() && !c.article.is_empty(),
                "{}",
                c.id
            );
            assert_eq!(
                CHECKS.iter().filter(|o| o.id == c.id).count(),
                1,
                "duplicate {}",
                c.id
            );
            // Dependencies come earlier in the list: no cycles, and a simple order to run in.
            for d in c.depends_on {
                let pos = CHECKS.iter().position(|o| o.id == *d);
                assert!(
                    pos.is_some_and(|p| p < i),
                    "{} depends on {d}, which must come first",
                    c.id
                );
            }
        }
    }

    fn result(severity: Severity, status: CheckStatus) -> CheckResult {
        CheckResult {
            check_id: "x".into(),
            name: "x".into(),
            severity,
            status,
            message: String::new(),
            resolution: vec![],
            article: String::new(),
            duration_ms: 0,
            retryable: false,
            at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn the_score_weighs_severity() {
        use CheckStatus::*;
        use Severity::*;
        assert_eq!(health_score(&[]), 0);
        assert_eq!(
            health_score(&[result(Critical, Passed), result(Low, Passed)]),
            100
        );
        assert_eq!(
            health_score(&[result(Critical, Failed), result(Critical, Passed)]),
            50
        );
        assert_eq!(
            health_score(&[result(Critical, Passed), result(High, Skipped)]),
            100
        );
        assert_eq!(
            health_score(&[result(Critical, Failed), result(High, Skipped)]),
            0
        );
        assert_eq!(
            health_score(&[result(Low, Failed), result(Critical, Passed)]),
            88
        );
    }

    #[test]
    fn a_run_passes_only_when_finished_as_passed_and_counts_its_issues() {
        use CheckStatus::*;
        let run = |outcome: Option<&str>, statuses: &[CheckStatus]| ScanRunView {
            id: 1,
            suite: "pre_onboarding".into(),
            started_at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0).unwrap_or_default(),
            finished_at: None,
            outcome: outcome.map(str::to_string),
            results: statuses
                .iter()
                .map(|s| result(Severity::High, *s))
                .collect(),
        };
        assert!(run(Some("passed"), &[Passed, Skipped]).passed());
        assert!(!run(Some("failed"), &[Failed]).passed());
        assert!(!run(None, &[]).passed());
        assert_eq!(run(None, &[]).issue_count(), 0);
        assert_eq!(
            run(Some("failed"), &[Passed, Failed, Error, Skipped]).issue_count(),
            2
        );
    }

    #[test]
    fn the_dashboards_issues_are_its_failed_and_unknown_checks_in_order() {
        use CheckStatus::*;
        let named = |id: &str, status| CheckResult {
            check_id: id.into(),
            ..result(Severity::High, status)
        };
        let view = |checks: Vec<CheckResult>| HealthView {
            connection: crate::model::ConnectionView {
                id: 1,
                company: "c".into(),
                url: "http://idi.example.com".into(),
                state: crate::model::ConnectionState::ValidationFailed,
                registered: true,
                onboarding: crate::model::Onboarding::NotStarted,
                outbound: crate::model::LinkStatus::Blank,
                inbound: crate::model::LinkStatus::Blank,
                version: 1,
                created_at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0)
                    .unwrap_or_default(),
                updated_at: chrono::DateTime::<chrono::Utc>::from_timestamp(0, 0)
                    .unwrap_or_default(),
            },
            checks,
            score: 0,
            runs: vec![],
        };
        assert!(view(vec![]).issues().is_empty());
        let issues = view(vec![
            named("tls", Failed),
            named("clock", Error),
            named("url", Passed),
            named("inbound", Skipped),
        ])
        .issues();
        assert_eq!(
            issues
                .iter()
                .map(|c| c.check_id.as_str())
                .collect::<Vec<_>>(),
            ["tls", "clock"]
        );
    }

    #[test]
    fn statuses_round_trip_and_issues_are_failures_or_unknowns() {
        for s in [
            CheckStatus::Passed,
            CheckStatus::Failed,
            CheckStatus::Error,
            CheckStatus::Skipped,
        ] {
            assert_eq!(CheckStatus::from_db(s.as_db()), Some(s));
        }
        assert!(CheckStatus::Failed.is_issue() && CheckStatus::Error.is_issue());
        assert!(!CheckStatus::Passed.is_issue() && !CheckStatus::Skipped.is_issue());
    }

    #[test]
    fn checks_are_found_by_id_and_labels_read_as_shown() {
        assert_eq!(check_spec("tls").map(|c| c.id.as_str()), Some("tls"));
        assert_eq!(
            check_spec("inbound").map(|c| c.id.as_str()),
            Some("inbound")
        );
        assert!(check_spec("no_such_check").is_none());
        assert_eq!(
            [
                Severity::Critical,
                Severity::High,
                Severity::Medium,
                Severity::Low
            ]
            .map(Severity::label),
            ["Critical", "High", "Medium", "Low"]
        );
        assert_eq!(
            [
                CheckStatus::Passed,
                CheckStatus::Failed,
                CheckStatus::Error,
                CheckStatus::Skipped
            ]
            .map(CheckStatus::label),
            ["Passed", "Failed", "Unknown error", "Skipped"]
        );
    }

    #[test]
    fn check_ids_keep_their_stored_strings_and_parse_back() {
        // Stored in the database and sent in JSON and events: these strings never change.
        assert_eq!(
            CHECKS.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [
                "url",
                "base_url",
                "key_management",
                "company_unique",
                "reachable",
                "tls",
                "protocol",
                "clock",
                "app_versions",
                "registration",
                "credentials",
                "entitlements",
                "entitlement_identity",
                "inbound",
                "heartbeat",
                "tls_expiry",
            ]
        );
        for c in CHECKS {
            assert_eq!(CheckId::parse(c.id.as_str()), Some(c.id));
            assert_eq!(c.id.spec(), c);
            assert_eq!(c.id.to_string(), c.id.as_str());
        }
        for unknown in [
            "",
            "no_such_check",
            "URL",
            "tls ",
            "check:tls",
            "pre_onboarding",
        ] {
            assert_eq!(CheckId::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_run_for_one_check_takes_what_it_depends_on_in_catalogue_order() {
        use CheckId::*;
        let ids = |only| {
            checks_for(Suite::PreOnboarding, only)
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(None),
            CHECKS
                .iter()
                .map(|c| c.id)
                .filter(|c| !matches!(c, Heartbeat | TlsExpiry))
                .collect::<Vec<_>>()
        );
        assert_eq!(ids(Some(Url)), [Url]);
        assert_eq!(ids(Some(KeyManagement)), [KeyManagement]);
        assert_eq!(ids(Some(Clock)), [Url, Reachable, Protocol, Clock]);
        assert_eq!(
            ids(Some(Inbound)),
            [
                Url,
                Reachable,
                Protocol,
                Clock,
                Registration,
                Credentials,
                Inbound
            ]
        );
    }

    #[test]
    fn the_dashboard_counts_failed_validations_in_a_row_newest_first() {
        let run = |id: i64, suite: &str, outcome: Option<&str>| ScanRunView {
            id,
            suite: suite.into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            finished_at: None,
            outcome: outcome.map(str::to_string),
            results: vec![],
        };
        let view = |runs: Vec<ScanRunView>| HealthView {
            connection: crate::model::ConnectionView {
                id: 1,
                company: "ServiceNow Impact".into(),
                url: "https://idi.example.com".into(),
                state: crate::model::ConnectionState::ValidationFailed,
                registered: true,
                onboarding: Onboarding::NotStarted,
                outbound: crate::model::LinkStatus::Blank,
                inbound: crate::model::LinkStatus::Blank,
                version: 1,
                created_at: chrono::DateTime::UNIX_EPOCH,
                updated_at: chrono::DateTime::UNIX_EPOCH,
            },
            checks: vec![],
            score: 0,
            runs,
        };
        // Newest first, as the dashboard lists them.
        let h = view(vec![
            run(6, "pre_onboarding", None),
            run(5, "check:tls", Some("failed")),
            run(4, "pre_onboarding", Some("failed")),
            run(3, "pre_onboarding", Some("failed")),
            run(2, "pre_onboarding", Some("passed")),
            run(1, "pre_onboarding", Some("failed")),
        ]);
        assert_eq!(h.failed_validations_in_a_row(), 2);
        assert_eq!(view(vec![]).failed_validations_in_a_row(), 0);
    }

    #[test]
    fn a_run_says_what_ran_in_words() {
        let run = |suite: &str| ScanRunView {
            id: 1,
            suite: suite.into(),
            started_at: chrono::DateTime::UNIX_EPOCH,
            finished_at: None,
            outcome: None,
            results: vec![],
        };
        assert_eq!(run("pre_onboarding").suite_label(), "Pre-onboarding checks");
        assert_eq!(
            run("connection_health").suite_label(),
            "Connection health checks"
        );
        assert_eq!(
            run("check:tls").suite_label(),
            "Re-run: TLS connection is valid"
        );
        // Something this build does not know is shown as stored.
        assert_eq!(run("check:gone").suite_label(), "check:gone");
        // How it ended, in words.
        let ended = |outcome: Option<&str>| ScanRunView {
            outcome: outcome.map(str::to_string),
            ..run("pre_onboarding")
        };
        assert_eq!(ended(None).outcome_label(), "Running");
        assert_eq!(ended(Some("passed")).outcome_label(), "Passed");
        assert_eq!(ended(Some("failed")).outcome_label(), "Failed");
    }

    #[test]
    fn the_connection_health_suite_runs_the_link_checks_and_the_heartbeat_but_never_registers_again(
    ) {
        use CheckId::*;
        let ids = |only| {
            checks_for(Suite::ConnectionHealth, only)
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(None),
            [
                Url,
                BaseUrl,
                KeyManagement,
                Reachable,
                Tls,
                Protocol,
                Clock,
                AppVersions,
                Credentials,
                Entitlements,
                EntitlementIdentity,
                Inbound,
                Heartbeat,
                TlsExpiry
            ]
        );
        // Registration is settled for an onboarded connection: what depends on it runs without it.
        assert_eq!(
            ids(Some(Credentials)),
            [Url, Reachable, Protocol, Clock, Credentials]
        );
        assert_eq!(
            ids(Some(Heartbeat)),
            [Url, Reachable, Protocol, Clock, Credentials, Heartbeat]
        );
        // Re-running a check the suite leaves out runs nothing.
        assert_eq!(ids(Some(Registration)), []);
        // The heartbeat is never part of the pre-onboarding suite.
        assert_eq!(checks_for(Suite::PreOnboarding, Some(Heartbeat)).len(), 0);
        assert_eq!(
            Suite::for_onboarding(Onboarding::Complete),
            Suite::ConnectionHealth
        );
        for o in [
            Onboarding::NotStarted,
            Onboarding::Started,
            Onboarding::Syncing,
            Onboarding::Failed,
        ] {
            assert_eq!(Suite::for_onboarding(o), Suite::PreOnboarding);
        }
        assert_eq!(
            Suite::parse("connection_health"),
            Some(Suite::ConnectionHealth)
        );
    }

    #[test]
    fn a_check_is_skipped_when_a_dependency_did_not_pass() {
        use CheckId::*;
        use CheckStatus::*;
        let with = |settled: &[(CheckId, CheckStatus)]| {
            let settled = settled.to_vec();
            move |id| settled.iter().find(|(s, _)| *s == id).map(|(_, st)| *st)
        };
        let because = |id: CheckId, settled: &[(CheckId, CheckStatus)]| {
            skipped_because(id.spec(), with(settled)).map(|s| s.id)
        };
        // Nothing to wait on, or everything it waits on passed: it runs.
        assert_eq!(because(Url, &[]), None);
        assert_eq!(because(Reachable, &[(Url, Passed)]), None);
        assert_eq!(
            because(Credentials, &[(Registration, Passed), (Clock, Passed)]),
            None
        );
        // A dependency failed, could not tell, or was itself skipped for a failure: skipped,
        // naming it.
        assert_eq!(because(Reachable, &[(Url, Failed)]), Some(Url));
        assert_eq!(because(Protocol, &[(Reachable, Error)]), Some(Reachable));
        assert_eq!(because(Clock, &[(Protocol, Skipped)]), Some(Protocol));
        assert_eq!(
            because(Credentials, &[(Registration, Passed), (Clock, Failed)]),
            Some(Clock)
        );
        assert_eq!(
            because(Credentials, &[(Registration, Failed), (Clock, Failed)]),
            Some(Registration)
        );
        // Not settled counts as not passed.
        assert_eq!(because(Reachable, &[]), Some(Url));
        // A not-applicable dependency (skipped, depending on nothing) counts as passed.
        assert_eq!(because(Reachable, &[(Url, Skipped)]), None);
        assert_eq!(because(Tls, &[(Url, Skipped)]), None);
        // … but does not hide a failure of a dependency listed after it.
        let both = CheckSpec {
            depends_on: &[Url, Reachable],
            ..*Protocol.spec()
        };
        assert_eq!(
            skipped_because(&both, with(&[(Url, Skipped), (Reachable, Failed)])).map(|s| s.id),
            Some(Reachable)
        );
        assert_eq!(
            skipped_because(&both, with(&[(Url, Skipped), (Reachable, Passed)])),
            None
        );
    }
}
