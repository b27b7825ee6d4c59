//! `mtls` plans: the client certificate of the TLS connection (`--tls-client-ca` proved it
//! genuine) must be registered for the API, by the SHA-256 of its DER; its registration's
//! subscription is the client identifier.

use super::{Admission, CompiledPlan, Refusal, ATTR_PLAN, ATTR_SUBSCRIPTION};
use crate::state::record::{certificate_key, sha256_hex};
use crate::state::StateStore;
use kafka_edge_definition::PlanSecurityType;

pub(super) fn admit<'p>(
    candidates: &[&'p CompiledPlan],
    certificate: &[u8],
    api: &str,
    store: Option<&dyn StateStore>,
) -> Result<Admission<'p>, Refusal> {
    let refuse = |reason: &str| Refusal::invalid(PlanSecurityType::Mtls, reason);
    let fingerprint = sha256_hex(certificate);
    let record = store
        .and_then(|store| store.client_certificate(api, &fingerprint))
        .ok_or_else(|| refuse("the client certificate is not registered for this API"))?;
    let plan = candidates.iter().find(|plan| plan.id == record.plan_id).ok_or_else(|| {
        refuse("the client certificate's plan does not take this request (closed, or its selection rule)")
    })?;
    Ok(Admission {
        plan: Some(plan),
        revocable: Some(certificate_key(api, &fingerprint)),
        attributes: vec![
            (ATTR_PLAN.to_string(), record.plan_id.clone()),
            (ATTR_SUBSCRIPTION.to_string(), record.subscription.clone()),
        ],
        client_identifier: record.subscription,
        claims: None,
    })
}
