//! Protocol v1 rendering of engine events (pure): which topic an event belongs to and its line.
//! The line is rendered once per event and shared by every subscriber and transport
//! ([`Event::line_with`]).

use crate::engine::event::{Event, EventBody};
use crate::publish::messages::{self, Topic};

/// The subscriber topic of an event; `None` for events no subscriber receives (samples, gaps,
/// markers and stream declarations go to the recorder; drops and warnings to logs and status).
pub fn topic(body: &EventBody) -> Option<Topic> {
    match body {
        EventBody::Features(..) => Some(Topic::Features),
        EventBody::Adaptation(_) => Some(Topic::Adaptation),
        EventBody::State(_) => Some(Topic::State),
        _ => None,
    }
}

/// Renders an event body as its protocol v1 line, if subscribers receive it.
pub fn render(body: &EventBody) -> Option<String> {
    match body {
        EventBody::Features(p, f) => Some(messages::features(p, f)),
        EventBody::Adaptation(a) => Some(messages::adaptation(a)),
        EventBody::State(s) => Some(messages::state(s)),
        _ => None,
    }
}

/// The event's line, rendered once.
pub fn line(ev: &Event) -> Option<&str> {
    ev.line_with(render)
}
