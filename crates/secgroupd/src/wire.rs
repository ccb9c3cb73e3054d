//! Small conversions to what the API sends: JSON answers, directions and
//! rule references in the wire types, wall-clock time. Shared by the
//! engine (mutations), the views and trace (reads).

use secgroup_api::{ErrorBody, RuleRef};
use secgroup_model::Direction;
use secgroup_policy::RuleOrigin;

use crate::event::{ApiError, ApiReply};

/// A successful answer: `value` as pretty JSON and a newline.
pub fn json<T: serde::Serialize>(value: &T) -> ApiReply {
    let mut body = serde_json::to_vec_pretty(value).map_err(|e| ApiError {
        status: 500,
        body: ErrorBody {
            error: format!("encoding the answer: {e}"),
            known: None,
        },
        allow: None,
    })?;
    body.push(b'\n');
    Ok(body)
}

pub fn api_direction(direction: Direction) -> secgroup_api::Direction {
    match direction {
        Direction::Ingress => secgroup_api::Direction::Ingress,
        Direction::Egress => secgroup_api::Direction::Egress,
    }
}

pub fn rule_ref(origin: &RuleOrigin) -> RuleRef {
    RuleRef {
        security_group: origin.sg.to_string(),
        direction: api_direction(origin.direction),
        index: origin.index,
    }
}

/// Wall-clock milliseconds since the epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
