//! Leader election with a `coordination.k8s.io/v1` Lease, so that of the controller's
//! replicas exactly one writes the config: the holder renews the Lease every third of its
//! duration; another replica takes it over only when it has not been renewed for a whole
//! duration. Every write goes with the resourceVersion it read, so two replicas racing for
//! an expired Lease cannot both win (the API server refuses the second with 409).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use std::time::Duration;

pub struct Election {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl Election {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Election {
        Election {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    /// How often the holder renews (and others look).
    pub fn period(&self) -> Duration {
        self.duration / 3
    }

    /// One round: acquires, renews or observes the Lease. Returns whether this replica holds
    /// it now. An API error means "not the leader" (a leader that cannot renew must stop
    /// writing before another may take over).
    pub async fn round(&self) -> Result<bool, String> {
        let now = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| format!("lease {}: {e}", self.name))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false), // another replica was first
                Err(e) => Err(format!("lease {}: {e}", self.name)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renewed = spec.renew_time.as_ref().map(|t| t.0);
        let held_for = spec
            .lease_duration_seconds
            .map_or(self.duration, |s| Duration::from_secs(s.max(0) as u64));
        let expired = renewed.is_none_or(|t| {
            let age = now.0.duration_since(t);
            age.as_secs_f64() > held_for.as_secs_f64()
        });
        if holder != self.identity {
            if !expired && !holder.is_empty() {
                return Ok(false);
            }
            log::info!("lease {}: taking it over from {holder:?}", self.name);
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(format!("lease {}: {e}", self.name)),
        }
    }
}
