//! Roles and what each may do: the one place the permission rules live. The server enforces them
//! on every route; the UI uses them only to hide what a user may not do.
use serde::{Deserialize, Serialize};

use super::labels::labelled_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Impact Store App administrator: Guided Setup and user management.
    ImpactAdmin,
    /// Impact Store App user: may look.
    ImpactUser,
    /// IDI admin: changes the provider connection and registrations.
    IdiAdmin,
}

labelled_enum! {
    Role { as_db, from_db, label }
    ImpactAdmin => "impact_admin", "Impact app admin";
    ImpactUser => "impact_user", "Impact app user";
    IdiAdmin => "idi_admin", "IDI admin";
}

/// What a route or action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// No session needed (sign-in, health, static assets, signed provider callbacks).
    Public,
    /// Any Impact Store App role: looking.
    View,
    /// `idi_admin`: Save, Connect to Provider, Connect to provider, Rescan, Retry, registrations.
    ManageConnection,
    /// `impact_admin`: Mark Complete, user management.
    Administer,
}

impl Access {
    /// Whether a user with these roles may do it.
    pub fn allows(self, roles: &[Role]) -> bool {
        match self {
            Access::Public => true,
            Access::View => !roles.is_empty(),
            Access::ManageConnection => roles.contains(&Role::IdiAdmin),
            Access::Administer => roles.contains(&Role::ImpactAdmin),
        }
    }

    /// Why not, in words for the person refused.
    pub fn refusal(self) -> &'static str {
        match self {
            Access::Public => "",
            Access::View => "You need an Impact Store App role to see this. Ask an Impact app admin to give you one.",
            Access::ManageConnection => "Changing the provider connection or registrations needs the IDI admin role. Ask an Impact app admin to give it to you.",
            Access::Administer => "This needs the Impact app admin role.",
        }
    }
}

/// Who an entry in a connection's history or the audit log is by: a person (their email) or the
/// app itself (scans, onboarding runs, resumes), recorded as "system".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Person(String),
    System,
}

impl Actor {
    /// As the history and the audit log store and show it.
    pub fn as_str(&self) -> &str {
        match self {
            Actor::Person(email) => email,
            Actor::System => "system",
        }
    }
}

/// The signed-in user, as the UI and the server see them (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub roles: Vec<Role>,
}

impl CurrentUser {
    pub fn may(&self, access: Access) -> bool {
        access.allows(&self.roles)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserChange {
    pub roles: Vec<Role>,
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_access_level_admits_exactly_the_right_roles() {
        use Role::*;
        let cases: [(&[Role], [bool; 4]); 6] = [
            (&[], [true, false, false, false]),
            (&[ImpactUser], [true, true, false, false]),
            (&[IdiAdmin], [true, true, true, false]),
            (&[ImpactAdmin], [true, true, false, true]),
            (&[ImpactUser, IdiAdmin], [true, true, true, false]),
            (&[ImpactAdmin, IdiAdmin], [true, true, true, true]),
        ];
        let levels = [
            Access::Public,
            Access::View,
            Access::ManageConnection,
            Access::Administer,
        ];
        for (roles, expected) in cases {
            for (level, want) in levels.iter().zip(expected) {
                assert_eq!(level.allows(roles), want, "{level:?} for {roles:?}");
            }
        }
    }

    #[test]
    fn roles_round_trip_through_storage_names_and_refusals_say_what_is_needed() {
        for r in Role::ALL {
            assert_eq!(Role::from_db(r.as_db()), Some(r));
        }
        assert_eq!(Role::from_db("root"), None);
        assert!(Access::ManageConnection.refusal().contains("IDI admin"));
        assert!(Access::Administer.refusal().contains("Impact app admin"));
    }

    #[test]
    fn a_user_may_what_their_roles_allow_and_roles_read_as_the_product_names_them() {
        let user = |roles: Vec<Role>| CurrentUser {
            id: 1,
            email: "a@example.com".into(),
            roles,
        };
        let viewer = user(vec![Role::ImpactUser]);
        assert!(viewer.may(Access::View));
        assert!(!viewer.may(Access::ManageConnection));
        assert!(!viewer.may(Access::Administer));
        let idi = user(vec![Role::IdiAdmin]);
        assert!(idi.may(Access::ManageConnection));
        assert!(!idi.may(Access::Administer));
        assert!(user(vec![]).may(Access::Public));
        assert!(!user(vec![]).may(Access::View));
        assert_eq!(Role::ImpactAdmin.label(), "Impact app admin");
        assert_eq!(Role::ImpactUser.label(), "Impact app user");
        assert_eq!(Role::IdiAdmin.label(), "IDI admin");
    }

    #[test]
    fn the_app_itself_is_recorded_as_system_and_a_person_by_their_email() {
        assert_eq!(Actor::System.as_str(), "system");
        assert_eq!(
            Actor::Person("ada@example.com".into()).as_str(),
            "ada@example.com"
        );
    }
}

/// One line of the audit page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    #[serde(with = "crate::model::time")]
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub connection_id: Option<i64>,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: String,
}
