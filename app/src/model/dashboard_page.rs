//! Which connections the dashboard's Connection health and Scan suites tabs show: filtered by
//! health and company, a page at a time, so a dashboard over hundreds of connections answers
//! with one page of cards and suites (the Resolution center still sums up every connection).
use serde::{Deserialize, Serialize};

use super::field::FieldError;
use super::health::Health;

/// Cards (and their connections' suites) per page.
pub const PAGE_SIZE: usize = 25;
/// The longest company filter accepted.
pub const COMPANY_FILTER_MAX: usize = 100;

/// The tabs' filter and page, as the page's address carries them (`?health=&company=&page=`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DashboardQuery {
    /// Only connections of this health (`down`, `slow`, `up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Only connections whose company contains this (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// 1 is the first page; past the last reads the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

const PAGE_FROM_ONE: &str = "The page must be a whole number from 1.";

/// A value left blank means "any".
fn blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl DashboardQuery {
    /// From the address's raw values: blank ones mean "any"; anything else must be valid.
    pub fn parse(
        health: Option<&str>,
        company: Option<&str>,
        page: Option<&str>,
    ) -> Result<Self, FieldError> {
        let health = blank(health)
            .map(|h| {
                Health::parse(h).ok_or_else(|| {
                    FieldError::new(
                        "health",
                        format!("Health \"{h}\" is not one of down, slow or up."),
                    )
                })
            })
            .transpose()?;
        // 0 is a number too; `validate` refuses it, as it does however the query came.
        let page = blank(page)
            .map(|p| {
                p.parse::<u32>()
                    .map_err(|_| FieldError::new("page", PAGE_FROM_ONE))
            })
            .transpose()?;
        let query = DashboardQuery {
            health,
            company: blank(company).map(str::to_string),
            page,
        };
        query.validate()?;
        Ok(query)
    }

    /// What the server checks of a query however it came (the page's own calls included).
    pub fn validate(&self) -> Result<(), FieldError> {
        if self
            .company
            .as_ref()
            .is_some_and(|c| c.chars().count() > COMPANY_FILTER_MAX)
        {
            return Err(FieldError::new(
                "company",
                format!("The company filter is at most {COMPANY_FILTER_MAX} characters."),
            ));
        }
        if self.page == Some(0) {
            return Err(FieldError::new("page", PAGE_FROM_ONE));
        }
        Ok(())
    }

    /// Whether a connection of this company and health is one the filter asks for.
    pub fn matches(&self, company: &str, health: Option<Health>) -> bool {
        let healthy = self.health.is_none_or(|h| health == Some(h));
        let named = self
            .company
            .as_ref()
            .is_none_or(|c| company.to_lowercase().contains(&c.to_lowercase()));
        healthy && named
    }

    /// This query at another page, as the tab's address (`tab` first).
    pub fn href(&self, tab: &str, page: u32) -> String {
        let mut out = format!("/health?tab={tab}");
        if let Some(h) = self.health {
            out.push_str(&format!("&health={}", h.as_str()));
        }
        if let Some(c) = &self.company {
            out.push_str(&format!("&company={}", encode(c)));
        }
        if page > 1 {
            out.push_str(&format!("&page={page}"));
        }
        out
    }
}

/// Percent-encodes a query value (what is not unreserved).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a page stands among the matching connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Paging {
    /// The page shown (1-based; 1 when nothing matches).
    pub page: u32,
    pub pages: u32,
    /// How many connections match the filter, on every page.
    pub matching: usize,
    /// How many connections there are, filter or not.
    pub total: usize,
    /// The first and last shown, 1-based (0 and 0 when none is).
    pub first: usize,
    pub last: usize,
}

/// The page `wanted` of `items` (the last when past it).
pub fn page_of<T>(items: Vec<T>, wanted: Option<u32>, total: usize) -> (Vec<T>, Paging) {
    let matching = items.len();
    let pages = u32::try_from(matching.div_ceil(PAGE_SIZE).max(1)).unwrap_or(u32::MAX);
    let page = wanted.unwrap_or(1).clamp(1, pages);
    let skip = (page as usize - 1) * PAGE_SIZE;
    let shown: Vec<T> = items.into_iter().skip(skip).take(PAGE_SIZE).collect();
    let paging = Paging {
        page,
        pages,
        matching,
        total,
        first: if shown.is_empty() { 0 } else { skip + 1 },
        last: skip + shown.len(),
    };
    (shown, paging)
}

#[cfg(test)]
mod tests;
