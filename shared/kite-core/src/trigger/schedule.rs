//! Schedule triggers: a cron in a time zone.
//!
//! - Occurrences come from `croner` in the trigger's zone. Across daylight saving
//!   changes a fixed-time job whose wall-clock time is skipped (spring forward) runs
//!   once, right after the gap; a time that happens twice (fall back) runs once, at
//!   its first occurrence. Interval jobs (`*/15 * * * *`) follow real time.
//! - [`evaluate`] decides which scheduled dates fire now, from the stored
//!   [`TriggerState`]: on-time dates always, missed ones per `recoverMissedSchedules`,
//!   never a date older than `lateMaximumDelay`, and backfills.
//! - [`execution_id`] derives the id of a scheduled execution from its date, so a
//!   duplicate firing cannot create a second execution.
//! - [`Schedule::eventbridge_expressions`] gives the UTC rules that cover every
//!   occurrence, for EventBridge (which only knows UTC).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Offset, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;
use serde_json::Value;

use super::{labels_of, object_of, states_of, Backfill, TriggerState};
use crate::execution::{Label, StateType};
use crate::expression::write_pebble;
use crate::flow::{parse_cron, Trigger, TriggerType};
use crate::input::parse_iso_duration;

/// Dates at most this late still count as on time: the local scheduler wakes within
/// milliseconds, an EventBridge rule within about a minute.
pub const ON_TIME: Duration = Duration::minutes(2);

/// Most dates one evaluation fires; the caller evaluates again at once if more are due.
pub const MAX_DATES_PER_EVALUATION: usize = 500;

/// What to do with dates missed while Kite was not running or the trigger was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoverMissedSchedules {
    /// Fire every missed date (Kestra's default).
    #[default]
    All,
    /// Fire only the most recent missed date.
    Last,
    /// Fire none; carry on with the next date.
    None,
}

impl RecoverMissedSchedules {
    pub fn parse(s: &str) -> Option<RecoverMissedSchedules> {
        match s.to_ascii_uppercase().as_str() {
            "ALL" => Some(RecoverMissedSchedules::All),
            "LAST" => Some(RecoverMissedSchedules::Last),
            "NONE" => Some(RecoverMissedSchedules::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("trigger `{0}` is not a Schedule trigger")]
    NotASchedule(String),
    #[error("invalid cron expression `{cron}`: {message}")]
    InvalidCron { cron: String, message: String },
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),
}

/// A Schedule trigger, read from the flow.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: String,
    pub cron: croner::Cron,
    pub expression: String,
    /// Kite's default is UTC (Kestra uses the server's zone).
    pub timezone: Tz,
    pub inputs: IndexMap<String, Value>,
    pub labels: Vec<Label>,
    pub late_maximum_delay: Option<Duration>,
    /// `None`: the server's default (Kestra's is ALL).
    pub recover_missed_schedules: Option<RecoverMissedSchedules>,
    /// The deprecated `backfill` property: applied when the trigger is first seen.
    pub backfill: Option<Backfill>,
    pub conditions: Vec<Value>,
    pub stop_after: Vec<StateType>,
}

fn date_of(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|d| d.and_utc())
        })
}

impl Schedule {
    pub fn from_trigger(trigger: &Trigger) -> Result<Schedule, ScheduleError> {
        if trigger.trigger_type != TriggerType::Schedule {
            return Err(ScheduleError::NotASchedule(trigger.id.clone()));
        }
        let p = &trigger.properties;
        let expression = p.get("cron").map(write_pebble).unwrap_or_default();
        let with_seconds = p.get("withSeconds").and_then(Value::as_bool).unwrap_or(false);
        let cron = parse_cron(&expression, with_seconds).map_err(|e| ScheduleError::InvalidCron {
            cron: expression.clone(),
            message: e.message,
        })?;
        let timezone = match p.get("timezone").and_then(Value::as_str) {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))?,
        };
        let backfill = p.get("backfill").and_then(|b| {
            Some(Backfill {
                start: date_of(b.get("start"))?,
                end: date_of(b.get("end")),
                current_date: None,
                inputs: object_of(b.get("inputs")),
                labels: labels_of(b.get("labels")),
                paused: false,
            })
        });
        Ok(Schedule {
            id: trigger.id.clone(),
            cron,
            expression,
            timezone,
            inputs: object_of(p.get("inputs")),
            labels: labels_of(p.get("labels")),
            late_maximum_delay: p
                .get("lateMaximumDelay")
                .and_then(Value::as_str)
                .and_then(parse_iso_duration),
            recover_missed_schedules: p
                .get("recoverMissedSchedules")
                .and_then(Value::as_str)
                .and_then(RecoverMissedSchedules::parse),
            backfill,
            conditions: match p.get("conditions").or_else(|| p.get("scheduleConditions")) {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            },
            stop_after: states_of(p.get("stopAfter")),
        })
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.timezone), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last occurrence strictly before `t`.
    pub fn previous_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.timezone), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Whether `instant` is an occurrence.
    pub fn is_due(&self, instant: DateTime<Utc>) -> bool {
        self.next_after(instant - Duration::seconds(1)) == Some(instant)
    }

    /// Occurrences in `[from, to]`, at most `limit`.
    pub fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = self.next_after(from - Duration::seconds(1));
        while let Some(d) = cursor {
            if d > to || out.len() >= limit {
                break;
            }
            out.push(d);
            cursor = self.next_after(d);
        }
        out
    }

    /// `trigger.date`, `trigger.next` and `trigger.previous` of the execution scheduled at
    /// `date`, as ISO dates with the zone's offset (`Z` for UTC); `next` is absent when no
    /// later date exists.
    pub fn variables(&self, date: DateTime<Utc>) -> IndexMap<String, Value> {
        let format = |d: DateTime<Utc>| {
            Value::String(
                d.with_timezone(&self.timezone)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            )
        };
        let mut vars = IndexMap::new();
        vars.insert("date".to_string(), format(date));
        if let Some(next) = self.next_after(date) {
            vars.insert("next".to_string(), format(next));
        }
        if let Some(previous) = self.previous_before(date) {
            vars.insert("previous".to_string(), format(previous));
        }
        vars
    }

    /// EventBridge schedule expressions, in UTC, that together fire at least at every
    /// occurrence of this trigger in the years around `around`.
    ///
    /// EventBridge rules know only UTC, so each local minute of the cron is mapped
    /// through every offset the zone uses (both sides of a DST change); days are
    /// left open (`* * ? *`) because a shift can move a time across midnight. The
    /// scheduler checks each firing with [`Schedule::is_due`]: a firing that is not an
    /// occurrence (the other offset, another day) creates nothing.
    pub fn eventbridge_expressions(&self, around: DateTime<Utc>) -> Vec<String> {
        let pattern = &self.cron.pattern;
        let offsets = zone_offsets_minutes(self.timezone, around);
        // UTC hour → minutes of that hour when a firing may be due.
        let mut by_hour: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        for hour in 0..24u32 {
            if !pattern.hour_match(hour).unwrap_or(false) {
                continue;
            }
            for minute in 0..60u32 {
                if !pattern.minute_match(minute).unwrap_or(false) {
                    continue;
                }
                for offset in &offsets {
                    let utc = (i64::from(hour * 60 + minute) - offset).rem_euclid(1440) as u32;
                    by_hour.entry(utc / 60).or_default().insert(utc % 60);
                }
            }
        }
        // Hours that share the same minutes share one rule.
        let mut by_minutes: BTreeMap<Vec<u32>, Vec<u32>> = BTreeMap::new();
        for (hour, minutes) in by_hour {
            by_minutes
                .entry(minutes.into_iter().collect())
                .or_default()
                .push(hour);
        }
        by_minutes
            .into_iter()
            .map(|(minutes, hours)| {
                format!(
                    "cron({} {} * * ? *)",
                    cron_list(&minutes, 60),
                    cron_list(&hours, 24)
                )
            })
            .collect()
    }
}

/// Every UTC offset (in minutes) `tz` uses from a year before `around` to five years after.
fn zone_offsets_minutes(tz: Tz, around: DateTime<Utc>) -> BTreeSet<i64> {
    let mut offsets = BTreeSet::new();
    let mut t = around - Duration::days(366);
    let end = around + Duration::days(5 * 366);
    while t < end {
        let seconds = i64::from(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        );
        offsets.insert(seconds.div_euclid(60));
        if seconds % 60 != 0 {
            offsets.insert(seconds.div_euclid(60) + 1);
        }
        t += Duration::hours(6);
    }
    offsets
}

/// `0,5,10-12`, or `*` for the full range.
fn cron_list(values: &[u32], full: usize) -> String {
    if values.len() == full {
        return "*".to_string();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let start = values[i];
        let mut end = start;
        while i + 1 < values.len() && values[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        parts.push(if end > start + 1 {
            format!("{start}-{end}")
        } else if end == start + 1 {
            format!("{start},{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

/// The id of the execution a Schedule trigger creates for `date`: the same date
/// always gives the same id.
pub fn execution_id(namespace: &str, flow_id: &str, trigger_id: &str, date: DateTime<Utc>) -> String {
    crate::id::derived_id(&format!(
        "schedule\n{namespace}\n{flow_id}\n{trigger_id}\n{}",
        date.to_rfc3339_opts(SecondsFormat::Millis, true)
    ))
}

/// The state of a trigger seen for the first time at `now`: its first execution is at the
/// next occurrence (no catch-up), plus the `backfill` property if any.
pub fn initial_state(
    namespace: &str,
    flow_id: &str,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> TriggerState {
    let mut state = TriggerState::new(namespace, flow_id, &schedule.id);
    state.next_execution_date = schedule.next_after(now);
    state.backfill = schedule.backfill.clone();
    state.updated_date = Some(now);
    state
}

/// A date to fire.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledDate {
    pub date: DateTime<Utc>,
    /// From a backfill (its inputs and labels apply).
    pub backfill: bool,
}

/// Why a due date did not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Missed, and `recoverMissedSchedules` does not recover it.
    NotRecovered,
    /// Older than `lateMaximumDelay`.
    TooLate,
}

/// What one evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Dates to fire, oldest first (backfill dates first).
    pub fire: Vec<ScheduledDate>,
    pub skipped: Vec<(DateTime<Utc>, SkipReason)>,
    /// The state to store once the executions exist.
    pub state: TriggerState,
    /// More dates are due: evaluate again right away.
    pub more: bool,
}

/// Decides which dates fire at `now`: every date from the state's next date up to
/// `horizon` (usually `now`; the end of the firing minute for EventBridge, whose
/// rules have minute resolution), then the backfill. Conditions are checked by the
/// caller, which may drop dates from `fire`.
pub fn evaluate(
    schedule: &Schedule,
    state: &TriggerState,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
    default_recovery: RecoverMissedSchedules,
) -> Evaluation {
    let before = state;
    let mut state = state.clone();
    let mut fire = Vec::new();
    let mut skipped = Vec::new();
    let mut more = false;
    if state.disabled {
        return Evaluation {
            fire,
            skipped,
            state,
            more,
        };
    }
    let from = state
        .next_execution_date
        .unwrap_or_else(|| schedule.next_after(now - ON_TIME).unwrap_or(now));
    let dates = schedule.occurrences(from, horizon, MAX_DATES_PER_EVALUATION);
    more |= dates.len() == MAX_DATES_PER_EVALUATION;
    let recovery = schedule.recover_missed_schedules.unwrap_or(default_recovery);
    let missed: Vec<DateTime<Utc>> = dates.iter().copied().filter(|d| *d < now - ON_TIME).collect();
    // LAST recovers the most recent due date: none of the missed ones if a date is on time.
    let last_missed = if missed.len() < dates.len() {
        None
    } else {
        missed.last().copied()
    };
    for &date in &dates {
        let is_missed = date < now - ON_TIME;
        let recovered = match recovery {
            RecoverMissedSchedules::All => true,
            RecoverMissedSchedules::Last => Some(date) == last_missed,
            RecoverMissedSchedules::None => false,
        };
        if is_missed && !recovered {
            skipped.push((date, SkipReason::NotRecovered));
        } else if schedule
            .late_maximum_delay
            .is_some_and(|delay| date < now - delay)
        {
            skipped.push((date, SkipReason::TooLate));
        } else {
            fire.push(ScheduledDate {
                date,
                backfill: false,
            });
        }
    }
    if let Some(&last) = dates.last() {
        state.date = Some(last);
        state.next_execution_date = schedule.next_after(last);
    } else if state.next_execution_date.is_none() {
        state.next_execution_date = Some(from);
    }
    if let Some(backfill) = state.backfill.as_mut().filter(|b| !b.paused) {
        let end = backfill.end.map_or(now, |e| e.min(now));
        let start = backfill.current_date.unwrap_or(backfill.start);
        let room = MAX_DATES_PER_EVALUATION.saturating_sub(fire.len()).max(1);
        let dates = schedule.occurrences(start, end, room);
        let full = dates.len() >= room;
        fire.extend(dates.iter().map(|&date| ScheduledDate { date, backfill: true }));
        if let Some(&last) = dates.last() {
            backfill.current_date = schedule.next_after(last);
        }
        // Done once no date is left before its end (a future end waits for time to pass).
        let finished = backfill
            .current_date
            .or(Some(start))
            .is_none_or(|next| backfill.end.map_or(next > now, |e| next > e));
        if full {
            more = true;
        } else if finished {
            state.backfill = None;
        }
    }
    if state != *before {
        state.updated_date = Some(now);
    }
    Evaluation {
        fire,
        skipped,
        state,
        more,
    }
}
