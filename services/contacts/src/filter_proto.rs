//! The filter language's proto form (`switchboard.contacts.v1.Filter`) to and from
//! [`crate::filter::Filter`].

use std::time::Duration;

use chrono::NaiveDate;
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::contacts::v1::condition::Value as ProtoValue;
use switchboard_proto::contacts::v1::filter::Node;

use crate::ContactsError;
use crate::filter::{Condition, FieldRef, Filter, FilterValue, Operator};
use crate::model::{from_timestamp, timestamp};

fn invalid(message: String) -> ContactsError {
    ContactsError::invalid_as("INVALID_FILTER", message)
}

fn operator_from_proto(value: i32) -> Result<Operator, ContactsError> {
    use proto::Operator as P;
    let operator = match P::try_from(value) {
        Ok(P::Eq) => Operator::Eq,
        Ok(P::Ne) => Operator::Ne,
        Ok(P::Contains) => Operator::Contains,
        Ok(P::NotContains) => Operator::NotContains,
        Ok(P::StartsWith) => Operator::StartsWith,
        Ok(P::IsSet) => Operator::IsSet,
        Ok(P::IsNotSet) => Operator::IsNotSet,
        Ok(P::Gt) => Operator::Gt,
        Ok(P::Gte) => Operator::Gte,
        Ok(P::Lt) => Operator::Lt,
        Ok(P::Lte) => Operator::Lte,
        Ok(P::In) => Operator::In,
        Ok(P::NotIn) => Operator::NotIn,
        Ok(P::HasAny) => Operator::HasAny,
        Ok(P::HasAll) => Operator::HasAll,
        Ok(P::HasNone) => Operator::HasNone,
        Ok(P::WithinLast) => Operator::WithinLast,
        Ok(P::NotWithinLast) => Operator::NotWithinLast,
        Ok(P::Unspecified) | Err(_) => {
            return Err(invalid(
                "condition.op: choose one of the Operator values".to_owned(),
            ));
        }
    };
    Ok(operator)
}

fn operator_to_proto(operator: Operator) -> proto::Operator {
    use proto::Operator as P;
    match operator {
        Operator::Eq => P::Eq,
        Operator::Ne => P::Ne,
        Operator::Contains => P::Contains,
        Operator::NotContains => P::NotContains,
        Operator::StartsWith => P::StartsWith,
        Operator::IsSet => P::IsSet,
        Operator::IsNotSet => P::IsNotSet,
        Operator::Gt => P::Gt,
        Operator::Gte => P::Gte,
        Operator::Lt => P::Lt,
        Operator::Lte => P::Lte,
        Operator::In => P::In,
        Operator::NotIn => P::NotIn,
        Operator::HasAny => P::HasAny,
        Operator::HasAll => P::HasAll,
        Operator::HasNone => P::HasNone,
        Operator::WithinLast => P::WithinLast,
        Operator::NotWithinLast => P::NotWithinLast,
    }
}

/// Converts a proto filter (structure only; [`crate::filter::validate`] checks the meaning).
pub(crate) fn from_proto(filter: &proto::Filter) -> Result<Filter, ContactsError> {
    from_proto_at(filter, 0)
}

fn from_proto_at(filter: &proto::Filter, depth: usize) -> Result<Filter, ContactsError> {
    if depth > crate::filter::MAX_GROUP_DEPTH {
        return Err(invalid(format!(
            "filter: groups nest at most {} deep",
            crate::filter::MAX_GROUP_DEPTH
        )));
    }
    let node = filter
        .node
        .as_ref()
        .ok_or_else(|| invalid("filter: set all, any or condition".to_owned()))?;
    let group = |group: &proto::FilterGroup| -> Result<Vec<Filter>, ContactsError> {
        group
            .filters
            .iter()
            .map(|member| from_proto_at(member, depth + 1))
            .collect()
    };
    Ok(match node {
        Node::All(members) => Filter::All(group(members)?),
        Node::Any(members) => Filter::Any(group(members)?),
        Node::Condition(condition) => Filter::Condition(condition_from_proto(condition)?),
    })
}

fn condition_from_proto(condition: &proto::Condition) -> Result<Condition, ContactsError> {
    let field: FieldRef = condition
        .field
        .parse()
        .map_err(|error: crate::filter::FilterError| invalid(error.to_string()))?;
    let op = operator_from_proto(condition.op)?;
    let value = match &condition.value {
        None => FilterValue::None,
        Some(ProtoValue::Text(text)) => FilterValue::Text(text.clone()),
        Some(ProtoValue::Number(number)) => FilterValue::Number(*number),
        Some(ProtoValue::Boolean(flag)) => FilterValue::Bool(*flag),
        Some(ProtoValue::Time(at)) => FilterValue::Time(
            from_timestamp(at).ok_or_else(|| invalid(format!("{field}: the time is out of range")))?,
        ),
        Some(ProtoValue::Date(date)) => FilterValue::Date(
            NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| invalid(format!("{field}: {date:?} is not a date (YYYY-MM-DD)")))?,
        ),
        Some(ProtoValue::Duration(duration)) => {
            let seconds = u64::try_from(duration.seconds)
                .map_err(|_| invalid(format!("{field}: the duration must be positive")))?;
            let nanos = u32::try_from(duration.nanos)
                .map_err(|_| invalid(format!("{field}: the duration must be positive")))?;
            FilterValue::Duration(Duration::new(seconds, nanos))
        }
        Some(ProtoValue::List(list)) => FilterValue::List(list.values.clone()),
    };
    Ok(Condition { field, op, value })
}

/// The proto form of a stored filter.
pub(crate) fn to_proto(filter: &Filter) -> proto::Filter {
    let group = |members: &[Filter]| proto::FilterGroup {
        filters: members.iter().map(to_proto).collect(),
    };
    let node = match filter {
        Filter::All(members) => Node::All(group(members)),
        Filter::Any(members) => Node::Any(group(members)),
        Filter::Condition(condition) => Node::Condition(proto::Condition {
            field: condition.field.to_string(),
            op: operator_to_proto(condition.op) as i32,
            value: match &condition.value {
                FilterValue::None => None,
                FilterValue::Text(text) => Some(ProtoValue::Text(text.clone())),
                FilterValue::Number(number) => Some(ProtoValue::Number(*number)),
                FilterValue::Bool(flag) => Some(ProtoValue::Boolean(*flag)),
                FilterValue::Time(at) => Some(ProtoValue::Time(timestamp(*at))),
                FilterValue::Date(date) => Some(ProtoValue::Date(date.format("%Y-%m-%d").to_string())),
                FilterValue::Duration(duration) => Some(ProtoValue::Duration(prost_types::Duration {
                    seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
                })),
                FilterValue::List(values) => Some(ProtoValue::List(proto::StringList {
                    values: values.clone(),
                })),
            },
        }),
    };
    proto::Filter { node: Some(node) }
}
