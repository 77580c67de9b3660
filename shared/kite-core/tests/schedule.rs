//! Schedule triggers: cron in a time zone, DST, recovery, backfill, EventBridge rules.

use chrono::{DateTime, Duration, TimeZone, Utc};
use indexmap::IndexMap;
use kite_core::flow::parse_flow;
use kite_core::trigger::schedule::{
    evaluate, execution_id, initial_state, RecoverMissedSchedules, Schedule, SkipReason,
};
use kite_core::trigger::{Backfill, TriggerState};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn schedule(props: &str) -> Schedule {
    let yaml = format!(
        "id: f\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n{}",
        props.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    let flow = parse_flow(&yaml).unwrap_or_else(|e| panic!("{e:?}"));
    Schedule::from_trigger(&flow.triggers[0]).unwrap()
}

fn dates(s: &Schedule, from: &str, to: &str) -> Vec<String> {
    s.occurrences(utc(from), utc(to), 100)
        .into_iter()
        .map(|d| d.with_timezone(&s.timezone).to_rfc3339())
        .collect()
}

#[test]
fn spring_forward_a_skipped_wall_clock_time_runs_once_right_after_the_gap() {
    // Europe/Paris, 2025-03-30: 02:00 → 03:00. 02:00 does not exist that day;
    // the daily 02:00 job runs once at 03:00 CEST (as cron-utils' ZonedDateTime
    // resolution does in Kestra: a time in the gap moves forward by the gap).
    let s = schedule("cron: \"0 2 * * *\"\ntimezone: Europe/Paris");
    assert_eq!(
        dates(&s, "2025-03-28T12:00:00Z", "2025-04-01T12:00:00Z"),
        [
            "2025-03-29T02:00:00+01:00",
            "2025-03-30T03:00:00+02:00",
            "2025-03-31T02:00:00+02:00",
            "2025-04-01T02:00:00+02:00"
        ]
    );
}

#[test]
fn fall_back_a_repeated_wall_clock_time_runs_once_at_its_first_occurrence() {
    // Europe/Paris, 2025-10-26: 03:00 CEST → 02:00 CET, so 02:30 happens twice;
    // 01:30 happens once. A fixed-time job runs once a day either way.
    let s = schedule("cron: \"30 2 * * *\"\ntimezone: Europe/Paris");
    assert_eq!(
        dates(&s, "2025-10-24T12:00:00Z", "2025-10-27T12:00:00Z"),
        [
            "2025-10-25T02:30:00+02:00",
            "2025-10-26T02:30:00+02:00",
            "2025-10-27T02:30:00+01:00"
        ]
    );
    let s = schedule("cron: \"30 1 * * *\"\ntimezone: Europe/Paris");
    assert_eq!(
        dates(&s, "2025-10-25T12:00:00Z", "2025-10-27T12:00:00Z"),
        ["2025-10-26T01:30:00+02:00", "2025-10-27T01:30:00+01:00"]
    );
}

#[test]
fn interval_jobs_follow_real_time_across_dst() {
    // Hourly in New York on the fall-back night: 01:00 EDT, 01:00 EST are both real hours.
    let s = schedule("cron: \"0 * * * *\"\ntimezone: America/New_York");
    assert_eq!(
        dates(&s, "2025-11-02T04:30:00Z", "2025-11-02T07:30:00Z"),
        [
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T02:00:00-05:00"
        ]
    );
}

#[test]
fn leap_years_and_nicknames() {
    let s = schedule("cron: \"0 0 29 2 *\"");
    assert_eq!(
        dates(&s, "2025-01-01T00:00:00Z", "2029-01-01T00:00:00Z"),
        ["2028-02-29T00:00:00+00:00"]
    );
    let s = schedule("cron: \"@daily\"");
    assert_eq!(
        s.next_after(utc("2024-02-28T10:00:00Z")),
        Some(utc("2024-02-29T00:00:00Z"))
    );
    let s = schedule("cron: \"*/30 * * * * *\"\nwithSeconds: true");
    assert_eq!(
        s.next_after(utc("2024-01-01T00:00:00Z")),
        Some(utc("2024-01-01T00:00:30Z"))
    );
}

#[test]
fn previous_and_next_variables_carry_the_zone_offset() {
    let s = schedule("cron: \"0 9 * * *\"\ntimezone: America/New_York");
    let v = s.variables(utc("2024-12-20T14:00:00Z"));
    assert_eq!(v["date"], "2024-12-20T09:00:00-05:00");
    assert_eq!(v["next"], "2024-12-21T09:00:00-05:00");
    assert_eq!(v["previous"], "2024-12-19T09:00:00-05:00");
    let s = schedule("cron: \"0 * * * *\"");
    let v = s.variables(utc("2024-12-20T10:00:00Z"));
    assert_eq!(v["date"], "2024-12-20T10:00:00Z");
    assert_eq!(v["previous"], "2024-12-20T09:00:00Z");
}

#[test]
fn execution_ids_derive_from_the_scheduled_date() {
    let d = utc("2024-12-20T10:00:00Z");
    assert_eq!(execution_id("dev", "f", "s", d), execution_id("dev", "f", "s", d));
    // Fixed values: every process and every release must derive the same id for a date,
    // or a second scheduler (another Lambda instance, a newer version) would run it twice.
    assert_eq!(execution_id("dev", "f", "s", d), "3f9iGDHAvGL3fznUPONgF8");
    assert_eq!(
        execution_id("dev", "f", "s", d + Duration::minutes(1)),
        "645aLI9zDy7uSqByi2E4Px"
    );
    assert_eq!(execution_id("dev", "f", "other", d), "4M2PUErHWkTXSSQF3v6ZTz");
    // The same instant written in another zone is the same date.
    let paris = DateTime::parse_from_rfc3339("2024-12-20T11:00:00+01:00").unwrap();
    assert_eq!(
        execution_id("dev", "f", "s", paris.with_timezone(&Utc)),
        "3f9iGDHAvGL3fznUPONgF8"
    );
    assert_ne!(
        execution_id("dev", "f", "s", d),
        execution_id("dev", "f", "s", d + Duration::minutes(1))
    );
    assert_ne!(
        execution_id("dev", "f", "s", d),
        execution_id("dev", "f", "other", d)
    );
}

fn state_at(s: &Schedule, now: &str) -> TriggerState {
    initial_state("dev", "f", s, utc(now))
}

fn fired(e: &kite_core::trigger::schedule::Evaluation) -> Vec<DateTime<Utc>> {
    e.fire.iter().map(|d| d.date).collect()
}

#[test]
fn a_new_trigger_first_fires_at_the_next_occurrence_and_each_date_once() {
    let s = schedule("cron: \"*/5 * * * *\"");
    let state = state_at(&s, "2024-01-01T10:02:00Z");
    assert_eq!(state.next_execution_date, Some(utc("2024-01-01T10:05:00Z")));
    // Nothing is due before the first date.
    let e = evaluate(
        &s,
        &state,
        utc("2024-01-01T10:04:59Z"),
        utc("2024-01-01T10:04:59Z"),
        RecoverMissedSchedules::All,
    );
    assert!(e.fire.is_empty());
    let e = evaluate(
        &s,
        &state,
        utc("2024-01-01T10:05:00Z"),
        utc("2024-01-01T10:05:00Z"),
        RecoverMissedSchedules::All,
    );
    assert_eq!(fired(&e), [utc("2024-01-01T10:05:00Z")]);
    assert_eq!(e.state.date, Some(utc("2024-01-01T10:05:00Z")));
    assert_eq!(e.state.next_execution_date, Some(utc("2024-01-01T10:10:00Z")));
    // The same instant evaluated again (a duplicate firing) fires nothing new.
    let again = evaluate(
        &s,
        &e.state,
        utc("2024-01-01T10:05:01Z"),
        utc("2024-01-01T10:05:01Z"),
        RecoverMissedSchedules::All,
    );
    assert!(again.fire.is_empty());
}

#[test]
fn missed_dates_follow_recover_missed_schedules() {
    // Kite was down from 10:02 to 10:33: 10:05 … 10:30 were missed (more than
    // two minutes late, the on-time margin).
    let now = utc("2024-01-01T10:33:00Z");
    let check = |props: &str, default: RecoverMissedSchedules| {
        let s = schedule(props);
        let state = state_at(&s, "2024-01-01T10:02:00Z");
        evaluate(&s, &state, now, now, default)
    };
    let all = check("cron: \"*/5 * * * *\"", RecoverMissedSchedules::All);
    assert_eq!(all.fire.len(), 6);
    assert_eq!(all.state.next_execution_date, Some(utc("2024-01-01T10:35:00Z")));
    let last = check(
        "cron: \"*/5 * * * *\"\nrecoverMissedSchedules: LAST",
        RecoverMissedSchedules::All,
    );
    assert_eq!(fired(&last), [utc("2024-01-01T10:30:00Z")]);
    assert_eq!(last.skipped.len(), 5);
    assert!(last.skipped.iter().all(|(_, r)| *r == SkipReason::NotRecovered));
    let none = check(
        "cron: \"*/5 * * * *\"\nrecoverMissedSchedules: NONE",
        RecoverMissedSchedules::All,
    );
    assert!(none.fire.is_empty());
    assert_eq!(none.state.next_execution_date, Some(utc("2024-01-01T10:35:00Z")));
    // The server-wide default applies when the trigger says nothing.
    let by_default = check("cron: \"*/5 * * * *\"", RecoverMissedSchedules::Last);
    assert_eq!(fired(&by_default), [utc("2024-01-01T10:30:00Z")]);
}

#[test]
fn an_on_time_date_fires_whatever_the_recovery() {
    let s = schedule("cron: \"*/5 * * * *\"\nrecoverMissedSchedules: NONE");
    let state = state_at(&s, "2024-01-01T10:02:00Z");
    // EventBridge delivers the 10:05 firing 40 s late: still on time.
    let e = evaluate(
        &s,
        &state,
        utc("2024-01-01T10:05:40Z"),
        utc("2024-01-01T10:05:59Z"),
        RecoverMissedSchedules::All,
    );
    assert_eq!(fired(&e), [utc("2024-01-01T10:05:00Z")]);
}

#[test]
fn late_maximum_delay_skips_dates_that_are_too_old() {
    let s = schedule("cron: \"*/5 * * * *\"\nlateMaximumDelay: PT12M");
    let state = state_at(&s, "2024-01-01T10:02:00Z");
    let now = utc("2024-01-01T10:21:00Z");
    let e = evaluate(&s, &state, now, now, RecoverMissedSchedules::All);
    assert_eq!(
        fired(&e),
        [
            utc("2024-01-01T10:10:00Z"),
            utc("2024-01-01T10:15:00Z"),
            utc("2024-01-01T10:20:00Z")
        ]
    );
    assert_eq!(e.skipped, [(utc("2024-01-01T10:05:00Z"), SkipReason::TooLate)]);
}

#[test]
fn a_disabled_trigger_fires_nothing() {
    let s = schedule("cron: \"* * * * *\"");
    let mut state = state_at(&s, "2024-01-01T10:00:00Z");
    state.disabled = true;
    let now = utc("2024-01-01T11:00:00Z");
    let e = evaluate(&s, &state, now, now, RecoverMissedSchedules::All);
    assert!(e.fire.is_empty());
    assert_eq!(e.state, state);
}

#[test]
fn backfill_fires_every_date_of_its_range_once_including_the_start() {
    let s = schedule("cron: \"0 * * * *\"");
    let mut state = state_at(&s, "2024-01-02T00:30:00Z");
    state.backfill = Some(Backfill {
        start: utc("2024-01-01T20:00:00Z"),
        end: Some(utc("2024-01-01T23:00:00Z")),
        current_date: None,
        inputs: IndexMap::new(),
        labels: Vec::new(),
        paused: false,
    });
    let now = utc("2024-01-02T00:31:00Z");
    let e = evaluate(&s, &state, now, now, RecoverMissedSchedules::All);
    let backfilled: Vec<_> = e.fire.iter().filter(|d| d.backfill).map(|d| d.date).collect();
    assert_eq!(backfilled.len(), 4);
    assert_eq!(backfilled[0], utc("2024-01-01T20:00:00Z"));
    assert!(e.state.backfill.is_none(), "a finished backfill is removed");
    // A paused backfill waits.
    let mut paused = state.clone();
    paused.backfill.as_mut().unwrap().paused = true;
    let e = evaluate(&s, &paused, now, now, RecoverMissedSchedules::All);
    assert!(e.fire.iter().all(|d| !d.backfill));
    assert!(e.state.backfill.is_some());
}

#[test]
fn a_long_backfill_is_fired_in_bounded_steps() {
    let s = schedule("cron: \"* * * * *\"");
    let mut state = state_at(&s, "2024-01-10T00:00:30Z");
    state.backfill = Some(Backfill {
        start: utc("2024-01-09T00:00:00Z"),
        end: Some(utc("2024-01-09T23:59:00Z")),
        current_date: None,
        inputs: IndexMap::new(),
        labels: Vec::new(),
        paused: false,
    });
    let now = utc("2024-01-10T00:00:40Z");
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let e = evaluate(&s, &state, now, now, RecoverMissedSchedules::All);
        for d in &e.fire {
            assert!(seen.insert(d.date), "fired twice: {}", d.date);
        }
        total += e.fire.len();
        state = e.state;
        if !e.more {
            break;
        }
    }
    assert_eq!(total, 1440);
    assert!(state.backfill.is_none());
}

#[test]
fn is_due_checks_a_firing_instant_against_the_zone() {
    let s = schedule("cron: \"0 2 * * *\"\ntimezone: Europe/Paris");
    assert!(s.is_due(utc("2025-01-15T01:00:00Z")));
    assert!(
        !s.is_due(utc("2025-01-15T00:00:00Z")),
        "winter: 00:00 UTC is 01:00 in Paris"
    );
    assert!(s.is_due(utc("2025-07-15T00:00:00Z")));
    assert!(
        !s.is_due(utc("2025-07-15T01:00:00Z")),
        "summer: 01:00 UTC is 03:00 in Paris"
    );
}

#[test]
fn eventbridge_rules_cover_every_occurrence_in_utc() {
    // UTC zone: the cron's own minutes and hours.
    let s = schedule("cron: \"30 9 * * 1-5\"");
    assert_eq!(
        s.eventbridge_expressions(utc("2025-01-01T00:00:00Z")),
        ["cron(30 9 * * ? *)"]
    );
    // Paris: 02:00 local is 00:00 UTC in summer and 01:00 UTC in winter.
    let s = schedule("cron: \"0 2 * * *\"\ntimezone: Europe/Paris");
    assert_eq!(
        s.eventbridge_expressions(utc("2025-01-01T00:00:00Z")),
        ["cron(0 0,1 * * ? *)"]
    );
    // India (+05:30, no DST): minutes shift too.
    let s = schedule("cron: \"0 9 * * *\"\ntimezone: Asia/Kolkata");
    assert_eq!(
        s.eventbridge_expressions(utc("2025-01-01T00:00:00Z")),
        ["cron(30 3 * * ? *)"]
    );
    let s = schedule("cron: \"*/15 * * * *\"\ntimezone: America/New_York");
    assert_eq!(
        s.eventbridge_expressions(utc("2025-01-01T00:00:00Z")),
        ["cron(0,15,30,45 * * * ? *)"]
    );
    let s = schedule("cron: \"* * * * *\"");
    assert_eq!(
        s.eventbridge_expressions(utc("2025-01-01T00:00:00Z")),
        ["cron(* * * * ? *)"]
    );
}

#[test]
fn eventbridge_rules_fire_at_every_occurrence_for_a_year_in_zones_with_dst() {
    for (cron, zone) in [
        ("0 2 * * *", "Europe/Paris"),
        ("30 1 * * *", "Europe/Paris"),
        ("15 23 * * 0", "America/New_York"),
        ("0 9 1 * *", "Australia/Sydney"),
        ("45 0 * * *", "Australia/Lord_Howe"),
    ] {
        let s = schedule(&format!("cron: \"{cron}\"\ntimezone: {zone}"));
        let rules: Vec<Schedule> = s
            .eventbridge_expressions(utc("2025-01-01T00:00:00Z"))
            .iter()
            .map(|e| {
                let inner = e.trim_start_matches("cron(").trim_end_matches(')');
                let fields: Vec<&str> = inner.split(' ').collect();
                // minutes hours day-of-month month → a UTC cron that fires the same minutes.
                schedule(&format!("cron: \"{} {} * * *\"", fields[0], fields[1]))
            })
            .collect();
        for date in s.occurrences(utc("2025-01-01T00:00:00Z"), utc("2026-01-01T00:00:00Z"), 1000) {
            assert!(
                rules.iter().any(|r| r.is_due(date)),
                "{cron} in {zone}: no rule fires at {date}"
            );
        }
    }
}

#[test]
fn backfill_property_starts_the_trigger_state() {
    let s = schedule("cron: \"0 0 * * *\"\nbackfill:\n  start: 2024-01-01T00:00:00Z");
    let state = initial_state(
        "dev",
        "f",
        &s,
        Utc.with_ymd_and_hms(2024, 1, 5, 12, 0, 0).unwrap(),
    );
    assert_eq!(state.backfill.unwrap().start, utc("2024-01-01T00:00:00Z"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the moments the scheduler wakes at (late, early, twice at the same
        /// instant), with ALL every date up to the last wake-up fires exactly once, in order.
        #[test]
        fn every_date_fires_exactly_once_whenever_the_scheduler_wakes(
            steps in proptest::collection::vec(0i64..900, 1..40),
            cron in prop::sample::select(vec!["*/5 * * * *", "0 * * * *", "30 1 * * *", "*/7 2-4 * * *"]),
            zone in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York"]),
        ) {
            let s = schedule(&format!("cron: \"{cron}\"\ntimezone: {zone}"));
            // Around the fall-back night in Paris and New York.
            let start = utc("2025-10-25T22:00:00Z");
            let mut state = initial_state("dev", "f", &s, start);
            let mut now = start;
            let mut fired: Vec<DateTime<Utc>> = Vec::new();
            for step in steps {
                now += Duration::seconds(step * 60);
                loop {
                    let e = evaluate(&s, &state, now, now, RecoverMissedSchedules::All);
                    fired.extend(e.fire.iter().map(|d| d.date));
                    state = e.state;
                    if !e.more {
                        break;
                    }
                }
            }
            let expected = s.occurrences(start + Duration::seconds(1), now, 100_000);
            prop_assert_eq!(fired, expected);
        }
    }
}
