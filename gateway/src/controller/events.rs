//! What the translation could not do, told where operators look: a Warning Event on each
//! Ingress with annotations or fields that are not translated or translated differently
//! (`kubectl describe ingress` shows it), published once per change of what there is to
//! say — a quiet cluster gets no new Events.

use crate::ingress::{Report, Verdict};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use std::collections::HashMap;

/// The API caps an Event's note at 1 kB.
const NOTE_MAX: usize = 1000;

pub struct Events {
    recorder: Recorder,
    /// What was last said of each Ingress (`namespace/name` → the note).
    said: HashMap<String, String>,
}

impl Events {
    pub fn new(client: kube::Client, identity: &str) -> Events {
        let reporter = Reporter {
            controller: "tidegate-ingress-controller".into(),
            instance: Some(identity.to_string()),
        };
        Events {
            recorder: Recorder::new(client, reporter),
            said: HashMap::new(),
        }
    }

    /// The note for the Ingress `id`: its unsupported lines, then those that differ.
    fn note(report: &Report, id: &str) -> Option<String> {
        let of = |verdict| {
            report
                .lines
                .iter()
                .filter(move |l| l.object == id && l.verdict == verdict)
                .map(|l| l.what.as_str())
                .collect::<Vec<_>>()
        };
        let (unsupported, differs) = (of(Verdict::Unsupported), of(Verdict::Differs));
        if unsupported.is_empty() && differs.is_empty() {
            return None;
        }
        let mut note = String::new();
        if !unsupported.is_empty() {
            note.push_str(&format!("not translated: {}", unsupported.join(", ")));
        }
        if !differs.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!(
                "translated with a difference: {}",
                differs.join(", ")
            ));
        }
        note.push_str(" (the whole report: report.txt of the gateways' config Secret)");
        if note.len() > NOTE_MAX {
            let mut cut = NOTE_MAX - 3;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
            note.push_str("...");
        }
        Some(note)
    }

    /// Publishes what changed since the last call.
    pub async fn publish(&mut self, ingresses: &[Ingress], report: &Report) {
        let mut seen = Vec::new();
        for ingress in ingresses {
            let id = crate::ingress::object_id(ingress);
            let Some(note) = Self::note(report, &id) else {
                continue;
            };
            seen.push(id.clone());
            if self.said.get(&id) == Some(&note) {
                continue;
            }
            let event = Event {
                type_: EventType::Warning,
                reason: "NotTranslated".into(),
                note: Some(note.clone()),
                action: "Translate".into(),
                secondary: None,
            };
            match self
                .recorder
                .publish(&event, &ingress.object_ref(&()))
                .await
            {
                Ok(()) => {
                    self.said.insert(id, note);
                }
                Err(e) => log::warn!("ingress-controller: an Event for {id}: {e}"),
            }
        }
        self.said.retain(|id, _| seen.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_lists_what_is_not_translated_then_what_differs_within_the_api_s_limit() {
        let mut report = Report::default();
        report.add(
            Verdict::Unsupported,
            "ns/a",
            "configuration-snippet",
            "raw nginx",
        );
        report.add(Verdict::Differs, "ns/a", "affinity", "hashing");
        report.add(Verdict::Maps, "ns/a", "proxy-read-timeout", "ok");
        report.add(Verdict::Maps, "ns/b", "ssl-redirect", "ok");
        let note = Events::note(&report, "ns/a").unwrap();
        assert!(
            note.starts_with(
                "not translated: configuration-snippet; translated with a difference: affinity"
            ),
            "{note}"
        );
        assert_eq!(Events::note(&report, "ns/b"), None);
        for i in 0..200 {
            report.add(
                Verdict::Unsupported,
                "ns/c",
                &format!("annotation-{i}"),
                "x",
            );
        }
        let long = Events::note(&report, "ns/c").unwrap();
        assert!(
            long.len() <= NOTE_MAX && long.ends_with("..."),
            "{}",
            long.len()
        );
    }
}
