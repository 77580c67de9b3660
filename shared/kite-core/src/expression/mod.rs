//! Kestra (Pebble) expressions rendered with tera, through a compatibility layer.
//!
//! A template is translated from Pebble to tera once ([`translate`]), compiled,
//! and cached by its source text; later renders only evaluate. Rendering is pure:
//! the clock, the files an execution may read and its error logs come in through
//! [`RenderContext`]; nothing reads the process environment or the file system.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::secret::Secrets;

mod builtins;
pub mod dates;
mod jq;
mod read;
mod translate;

use translate::PrintMode;

/// Reads an execution's files (`kestra:///…`) for `read()`.
pub trait FileReader: Send + Sync {
    fn read_file(&self, uri: &str) -> Result<Vec<u8>, FileReadError>;
}

/// Why a [`FileReader`] could not give a file; `read()` fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileReadError {
    /// No file at this URI.
    #[error("File not found: {0}")]
    NotFound(String),
    /// The storage failed, in its own words.
    #[error("{0}")]
    Other(String),
}

/// Everything a render may look at.
#[derive(Clone, Copy)]
pub struct RenderContext<'a> {
    /// An object: flow, execution, task, taskrun, inputs, outputs, trigger, labels, vars, parent(s)…
    pub variables: &'a Value,
    pub files: Option<&'a dyn FileReader>,
    /// `kestra:///{ns}/{flow}/executions/{id}/` prefixes `read()` may open.
    pub readable_prefixes: &'a [String],
    pub error_logs: &'a [Value],
    pub now: DateTime<Utc>,
    /// What `secret()` reads (and remembers for masking); `None` fails it.
    pub secrets: Option<&'a Secrets>,
    /// What `kv()` reads; `None` finds no key.
    pub kv: Option<&'a dyn crate::kv::KvSource>,
}

impl<'a> RenderContext<'a> {
    /// A context with variables only (no files, no logs).
    pub fn new(variables: &'a Value, now: DateTime<Utc>) -> Self {
        RenderContext {
            variables,
            files: None,
            readable_prefixes: &[],
            error_logs: &[],
            now,
            secrets: None,
            kv: None,
        }
    }
}

/// A template that failed to compile or render, in Kestra's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpressionError {
    pub message: String,
}

impl ExpressionError {
    pub fn new(message: impl Into<String>) -> Self {
        ExpressionError {
            message: message.into(),
        }
    }
}

/// Kestra's truthiness (`TruthUtils`): everything is true but these strings.
pub fn is_truthy(rendered: &str) -> bool {
    !matches!(rendered.trim(), "false" | "0" | "-0" | "")
}

/// Writes a value as Pebble prints it: strings as is, null as empty, maps and
/// lists as JSON.
pub fn write_pebble(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

const CACHE_LIMIT: usize = 20_000;

/// Compiles, caches and renders templates. Cheap to share (`Send + Sync`).
#[derive(Default)]
pub struct ExpressionEngine {
    cache: RwLock<HashMap<(String, bool), Arc<Compiled>>>,
}

/// A compiled template and the variables it names.
struct Compiled {
    tera: tera::Tera,
    uses: Uses,
}

/// Which parts of the variables a template can reach, so that a render copies
/// only those into tera's context instead of the whole execution.
#[derive(Debug, Default, PartialEq)]
enum Reach {
    /// Only `root.key` accesses: just these keys of the root.
    #[default]
    Keys,
    /// The root itself is used (subscripts, loops, filters, function arguments).
    Whole,
}

#[derive(Debug, Default)]
struct Uses {
    roots: Vec<(String, Reach, Vec<String>)>,
}

impl Uses {
    /// Scans the Pebble source: every identifier that is not a member access
    /// may be a root variable. Words inside string literals count too, which
    /// only copies a little more than needed.
    fn of(template: &str) -> Uses {
        let bytes = template.as_bytes();
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        let mut uses = Uses::default();
        let mut i = 0;
        while i < bytes.len() {
            if !is_ident(bytes[i]) || bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let before = template[..start].trim_end().as_bytes().last().copied();
            if before == Some(b'.') || (start > 0 && bytes[start - 1].is_ascii_digit()) {
                continue;
            }
            let word = &template[start..i];
            let key = match (bytes.get(i), bytes.get(i + 1)) {
                (Some(b'.'), Some(&b)) if is_ident(b) && !b.is_ascii_digit() => {
                    let from = i + 1;
                    let mut end = from;
                    while end < bytes.len() && is_ident(bytes[end]) {
                        end += 1;
                    }
                    Some(template[from..end].to_string())
                }
                _ => None,
            };
            let entry = match uses.roots.iter_mut().position(|(w, _, _)| w == word) {
                Some(p) => &mut uses.roots[p],
                None => {
                    uses.roots.push((word.to_string(), Reach::Keys, Vec::new()));
                    uses.roots.last_mut().expect("just pushed")
                }
            };
            match key {
                Some(k) if entry.1 == Reach::Keys => {
                    if !entry.2.contains(&k) {
                        entry.2.push(k);
                    }
                }
                Some(_) => {}
                None => entry.1 = Reach::Whole,
            }
        }
        uses
    }

    /// tera's context for this template: the roots it names, pruned to the
    /// keys it reads.
    fn context(&self, variables: &Value) -> tera::Context {
        let Value::Object(all) = variables else {
            return tera::Context::new();
        };
        let mut picked = serde_json::Map::with_capacity(self.roots.len());
        for (word, reach, keys) in &self.roots {
            let Some(value) = all.get(word) else { continue };
            let copy = match (reach, value) {
                (Reach::Keys, Value::Object(members)) => Value::Object(
                    keys.iter()
                        .filter_map(|k| members.get(k).map(|v| (k.clone(), v.clone())))
                        .collect(),
                ),
                _ => value.clone(),
            };
            picked.insert(word.clone(), copy);
        }
        tera::Context::from_value(Value::Object(picked)).unwrap_or_default()
    }
}

struct Current<'a> {
    engine: &'a ExpressionEngine,
    ctx: &'a RenderContext<'a>,
}

thread_local! {
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
    /// Renders in progress on this thread, nested through `render()`.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Loop iterations and nested renders so far in the outermost render on this thread.
    static ITERATIONS: Cell<u64> = const { Cell::new(0) };
    /// When the outermost render on this thread started, by the host's [`RenderClock`].
    static STARTED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// The host's monotonic clock (time since any fixed point) that bounds how long one render
/// runs: the core has no clock of its own. Without one, only the other bounds apply.
pub type RenderClock = fn() -> Duration;

static RENDER_CLOCK: std::sync::OnceLock<RenderClock> = std::sync::OnceLock::new();

/// The host's answer to "should the render in progress stop?" (its execution was killed).
pub type Interrupt = Arc<dyn Fn() -> bool + Send + Sync>;

thread_local! {
    static INTERRUPT: std::cell::RefCell<Option<Interrupt>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with the renders it does on this thread stopping (failing) once `interrupt`
/// answers `true`, checked where the time bound is.
pub fn interruptible<R>(interrupt: Interrupt, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Interrupt>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            INTERRUPT.with(|i| *i.borrow_mut() = previous);
        }
    }
    let _restore = Restore(INTERRUPT.with(|i| i.replace(Some(interrupt))));
    f()
}

/// Installs the clock of [`MAX_RENDER_TIME`], once per process (later calls change nothing).
pub fn install_render_clock(clock: RenderClock) {
    let _ = RENDER_CLOCK.set(clock);
}

/// How long one render (nested renders included) may run before it fails, checked at each
/// loop iteration and nested render: the loop and output bounds cap the work's count, this
/// caps its time when each step is slow (large values through filters).
pub const MAX_RENDER_TIME: Duration = Duration::from_secs(10);

/// Text one render may produce before it fails.
pub const MAX_RENDER_OUTPUT: usize = 10 * 1024 * 1024;

/// `for` iterations (nested loops and nested `render()` calls included) one render may run
/// before it fails. tera has no time limit, and the core no clock to measure one: this bound
/// and [`MAX_RENDER_OUTPUT`] are what keep a render's work finite.
pub const MAX_LOOP_ITERATIONS: u64 = 1_000_000;

/// Counts one loop iteration of the render in progress; fails past [`MAX_LOOP_ITERATIONS`].
/// Outside a render (nothing to bound) it does nothing.
fn count_iteration() -> Result<(), ExpressionError> {
    if DEPTH.with(Cell::get) == 0 {
        return Ok(());
    }
    let count = ITERATIONS.with(|n| {
        let next = n.get().saturating_add(1);
        n.set(next);
        next
    });
    if count > MAX_LOOP_ITERATIONS {
        return Err(ExpressionError::new(format!(
            "render stopped: more than {MAX_LOOP_ITERATIONS} loop iterations"
        )));
    }
    if INTERRUPT.with(|i| i.borrow().as_ref().is_some_and(|stop| stop())) {
        return Err(ExpressionError::new("render stopped: the execution was killed"));
    }
    if let Some(clock) = RENDER_CLOCK.get() {
        if clock().saturating_sub(STARTED.with(Cell::get)) > MAX_RENDER_TIME {
            return Err(ExpressionError::new(format!(
                "render stopped: it ran for more than {} s",
                MAX_RENDER_TIME.as_secs()
            )));
        }
    }
    Ok(())
}

/// Renders nested through `render()` before the innermost fails: a value that renders
/// itself would otherwise recurse until the thread's stack overflows.
pub const MAX_RENDER_DEPTH: usize = 10;

/// Points [`CURRENT`] at a render's context for the guard's lifetime, and restores the
/// previous one when dropped, also when the render panics: a dangling pointer never
/// outlives the render it points into.
struct CurrentGuard {
    previous: *const (),
}

impl CurrentGuard {
    /// Fails when renders already nest [`MAX_RENDER_DEPTH`] deep on this thread, or
    /// when a nested render passes the iteration budget of the outermost one.
    fn set(current: &Current<'_>, template: &str) -> Result<CurrentGuard, ExpressionError> {
        let depth = DEPTH.with(Cell::get);
        if depth >= MAX_RENDER_DEPTH {
            return Err(ExpressionError::new(format!(
                "Unable to render `{template}`: renders nest deeper than {MAX_RENDER_DEPTH} levels \
                 (does a value render itself through render()?)"
            )));
        }
        if depth == 0 {
            ITERATIONS.with(|n| n.set(0));
            if let Some(clock) = RENDER_CLOCK.get() {
                STARTED.with(|t| t.set(clock()));
            }
        } else {
            // `render()` re-renders up to 16 times per level: counted, so that nesting
            // cannot multiply the work past the budget.
            count_iteration()?;
        }
        DEPTH.with(|d| d.set(depth + 1));
        let previous = CURRENT.with(|c| c.replace(current as *const Current<'_> as *const ()));
        Ok(CurrentGuard { previous })
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Gives the functions that need it the context of the render in progress on
/// this thread.
fn with_current<R>(f: impl FnOnce(&Current<'_>) -> R) -> tera::Result<R> {
    let ptr = CURRENT.with(Cell::get);
    if ptr.is_null() {
        return Err(tera::Error::msg("no render in progress"));
    }
    // SAFETY: `ptr` is set by `ExpressionEngine::render_with` (through `CurrentGuard`) to
    // a `Current` that lives on its stack for the whole synchronous render; the guard
    // restores the previous pointer when the render ends, returns or unwinds.
    #[allow(unsafe_code)]
    let current = unsafe { &*(ptr as *const Current<'_>) };
    Ok(f(current))
}

impl ExpressionEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Renders a template to text.
    pub fn render(&self, template: &str, ctx: &RenderContext) -> Result<String, ExpressionError> {
        if !template.contains('{') {
            return Ok(template.to_string());
        }
        self.render_with(template, ctx, PrintMode::Text)
    }

    /// Renders a template; a lone `{{ expr }}` gives the expression's native value.
    pub fn render_typed(&self, template: &str, ctx: &RenderContext) -> Result<Value, ExpressionError> {
        let trimmed = template.trim();
        let lone = trimmed.starts_with("{{")
            && trimmed.ends_with("}}")
            && trimmed[2..].find("}}") == Some(trimmed.len() - 4)
            && !trimmed.contains("{%");
        if !lone {
            return self.render(template, ctx).map(Value::String);
        }
        let json = self.render_with(trimmed, ctx, PrintMode::Json)?;
        serde_json::from_str(&json)
            .map_err(|e| ExpressionError::new(format!("Unable to read the value of `{template}`: {e}")))
    }

    /// Renders every string in a value (maps and lists recursively).
    pub fn render_value(&self, value: &Value, ctx: &RenderContext) -> Result<Value, ExpressionError> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s, ctx)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(self.render(k, ctx)?, self.render_value(v, ctx)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn compiled(&self, template: &str, mode: PrintMode) -> Result<Arc<Compiled>, ExpressionError> {
        let key = (template.to_string(), mode == PrintMode::Json);
        if let Some(t) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(t);
        }
        let source = translate::translate(template, mode)?;
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        builtins::register(&mut tera);
        tera.add_raw_template("t", &source).map_err(|e| {
            ExpressionError::new(format!(
                "Unable to parse the expression `{template}`: {}",
                error_chain(&e)
            ))
        })?;
        let compiled = Arc::new(Compiled {
            tera,
            uses: Uses::of(template),
        });
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, compiled.clone());
        }
        Ok(compiled)
    }

    fn render_with(
        &self,
        template: &str,
        ctx: &RenderContext,
        mode: PrintMode,
    ) -> Result<String, ExpressionError> {
        let compiled = self.compiled(template, mode)?;
        let context = compiled.uses.context(ctx.variables);
        let current = Current { engine: self, ctx };
        let _restore = CurrentGuard::set(&current, template)?;
        let mut output = BoundedOutput::default();
        match compiled.tera.render_to("t", &context, &mut output) {
            Ok(()) => String::from_utf8(output.bytes)
                .map_err(|e| ExpressionError::new(format!("Unable to render `{template}`: {e}"))),
            Err(_) if output.over => Err(ExpressionError::new(format!(
                "render stopped: more than {MAX_RENDER_OUTPUT} bytes of output"
            ))),
            Err(e) => Err(render_error(&e, template, ctx.variables)),
        }
    }
}

/// tera writes a render's text here as it goes, so an oversized one stops at the bound
/// instead of filling memory first.
#[derive(Default)]
struct BoundedOutput {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > MAX_RENDER_OUTPUT {
            self.over = true;
            return Err(std::io::Error::other("render output bound"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether a value would print to more than `limit` bytes, stopping as soon as it does.
fn larger_than(value: &Value, limit: usize) -> bool {
    fn size(value: &Value, budget: &mut usize) -> bool {
        let own = match value {
            Value::String(s) => s.len(),
            Value::Array(items) => {
                return items.iter().any(|v| {
                    *budget = budget.saturating_sub(1);
                    size(v, budget)
                }) || *budget == 0;
            }
            Value::Object(map) => {
                return map.iter().any(|(k, v)| {
                    *budget = budget.saturating_sub(k.len() + 1);
                    size(v, budget)
                }) || *budget == 0;
            }
            _ => 8,
        };
        if own > *budget {
            *budget = 0;
            return true;
        }
        *budget -= own;
        false
    }
    let mut budget = limit;
    size(value, &mut budget)
}

fn error_chain(e: &tera::Error) -> String {
    let mut parts = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = current {
        let s = err.to_string();
        if !s.is_empty() && !s.starts_with("Failed to render") {
            parts.push(s);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// Maps tera's errors to Kestra's messages.
fn render_error(e: &tera::Error, template: &str, variables: &Value) -> ExpressionError {
    let chain = error_chain(e);
    if let Some(path) = chain
        .split("Variable `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
    {
        let missing = first_missing_segment(path, variables);
        let line = template
            .lines()
            .position(|l| l.contains(&missing))
            .map(|i| i + 1)
            .unwrap_or(1);
        return ExpressionError::new(format!(
            "Unable to find `{missing}` used in the expression `{template}` at line {line}"
        ));
    }
    // The innermost message is what a function or filter said.
    let mut innermost = e.to_string();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = current {
        innermost = err.to_string();
        current = err.source();
    }
    ExpressionError::new(innermost)
}

/// For `inputs.a.b`, the first segment that does not resolve in the variables.
fn first_missing_segment(path: &str, variables: &Value) -> String {
    let mut current = Some(variables);
    let mut last = path;
    for segment in path.split('.') {
        let segment = segment.trim_matches(|c| c == '"' || c == '\'');
        last = segment;
        current = current.and_then(|v| match v {
            Value::Object(m) => m.get(segment),
            Value::Array(a) => segment.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        });
        if current.is_none() {
            return segment.to_string();
        }
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_render_pointer_is_restored_when_a_render_panics() {
        let engine = ExpressionEngine::new();
        let variables = json!({});
        let ctx = RenderContext::new(&variables, now());
        let current = Current {
            engine: &engine,
            ctx: &ctx,
        };
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = CurrentGuard::set(&current, "t").expect("not nested");
            assert!(!CURRENT.with(Cell::get).is_null());
            panic!("a render panics");
        }));
        assert!(unwound.is_err());
        assert!(
            CURRENT.with(Cell::get).is_null(),
            "no pointer into the unwound render"
        );
        assert!(with_current(|_| ()).is_err());
    }

    #[test]
    fn a_value_that_renders_itself_fails_at_the_depth_bound() {
        let engine = ExpressionEngine::new();
        let variables = json!({"vars": {"a": "{{ render(vars.a) }}"}});
        let ctx = RenderContext::new(&variables, now());
        let e = engine.render("{{ render(vars.a) }}", &ctx).expect_err("bounded");
        assert!(
            e.message.contains("renders nest deeper than 10 levels"),
            "{}",
            e.message
        );
        // The thread can render again afterwards.
        assert_eq!(
            engine.render("{{ 1 + 1 }}", &ctx).map_err(|e| e.message),
            Ok("2".into())
        );
    }

    #[test]
    fn an_interrupt_stops_a_render_in_progress() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let interrupt: Interrupt = Arc::new(move || flag.load(Ordering::Relaxed));
        // Set from another thread while the render runs; the render would otherwise
        // finish its 999,999 iterations.
        let setter = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            stop.store(true, Ordering::Relaxed);
        });
        let e = interruptible(interrupt, || {
            render(
                "{% for i in range(1, 999) %}{% for j in range(1, 1000) %}{{ j }}{% endfor %}{% endfor %}",
                json!({}),
            )
        })
        .expect_err("interrupted");
        setter.join().unwrap();
        assert_eq!(e.message, "render stopped: the execution was killed");
        // Outside `interruptible`, renders are not stopped.
        assert_eq!(
            render("{{ 1 + 1 }}", json!({})).map_err(|e| e.message),
            Ok("2".into())
        );
    }

    #[test]
    fn jq_outputs_count_against_the_iteration_bound() {
        let e = render(
            "{{ vars.x | jq('range(1e12)') | length }}",
            json!({"vars": {"x": 1}}),
        )
        .expect_err("bounded");
        assert!(
            e.message
                .contains("render stopped: more than 1000000 loop iterations"),
            "{}",
            e.message
        );
        assert_eq!(
            render("{{ vars.x | jq('range(3)') }}", json!({"vars": {"x": 1}})).map_err(|e| e.message),
            Ok("[0,1,2]".into())
        );
    }

    #[test]
    fn loops_stop_past_the_iteration_bound_nested_loops_included() {
        // 1,000 outer + 1,000,000 inner iterations; each loop alone is far below the bound.
        let e = render(
            "{% for i in range(1, 1000) %}{% for j in range(1, 1000) %}{% endfor %}{% endfor %}",
            json!({}),
        )
        .expect_err("bounded");
        assert_eq!(e.message, "render stopped: more than 1000000 loop iterations");
        // Loops over lists and maps count too, and the budget is per render.
        let vars = json!({"vars": {"list": [1, 2, 3], "map": {"a": 1}}});
        assert_eq!(
            render(
                "{% for x in vars.list %}{{ x }}{% endfor %}{% for k, v in vars.map %}{{ k }}{% endfor %}",
                vars
            )
            .map_err(|e| e.message),
            Ok("123a".into())
        );
    }

    #[test]
    fn a_render_stops_at_the_output_bound() {
        let vars = json!({"vars": {"big": "x".repeat(1024 * 1024)}});
        let e = render(
            "{% for i in range(1, 11) %}{{ vars.big }}{% endfor %}",
            vars.clone(),
        )
        .expect_err("bounded");
        assert_eq!(e.message, "render stopped: more than 10485760 bytes of output");
        let fits = render("{% for i in range(1, 9) %}{{ vars.big }}{% endfor %}", vars).expect("fits");
        assert_eq!(fits.len(), 9 * 1024 * 1024);
    }

    #[test]
    fn a_variable_doubled_in_a_loop_stops_at_the_size_bound() {
        let e = render(
            "{% set_global s = 'x' %}{% for i in range(1, 64) %}{% set_global s = s ~ s %}{% endfor %}{{ s }}",
            json!({}),
        )
        .expect_err("bounded");
        assert_eq!(
            e.message,
            "render stopped: a variable of more than 10485760 bytes"
        );
        assert_eq!(
            render("{% set n = 2 == 2 %}{{ n }}", json!({})).map_err(|e| e.message),
            Ok("true".into())
        );
    }

    #[test]
    fn whitespace_control_on_loops_is_kept() {
        assert_eq!(
            render("{%- for x in [1, 2] -%}\n {{ x }}\n{%- endfor -%}", json!({})).map_err(|e| e.message),
            Ok("12".into())
        );
    }

    #[test]
    fn templates_that_could_recurse_without_bound_are_refused() {
        for template in [
            "{% macro m(n=1) %}{{ self::m(n=n) }}{% endmacro m %}{{ self::m(n=1) }}",
            "{% include \"t\" %}",
        ] {
            let e = render(template, json!({})).expect_err("refused");
            assert!(
                e.message.contains("is not supported in expressions"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn range_at_the_limits_of_integers_is_refused_not_overflowed() {
        let e = render(
            "{{ range(-9223372036854775807, 9223372036854775807) }}",
            json!({}),
        )
        .expect_err("too large");
        assert_eq!(e.message, "range is too large");
        assert_eq!(
            render(
                "{{ range(9223372036854775806, 9223372036854775807) | length }}",
                json!({})
            )
            .map_err(|e| e.message),
            Ok("2".into())
        );
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-12-20T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn render(t: &str, vars: Value) -> Result<String, ExpressionError> {
        ExpressionEngine::new().render(t, &RenderContext::new(&vars, now()))
    }

    #[test]
    fn plain_and_simple() {
        assert_eq!(render("no braces", json!({})).unwrap(), "no braces");
        assert_eq!(
            render("Hello {{ inputs.name }}", json!({"inputs": {"name": "World"}})).unwrap(),
            "Hello World"
        );
    }

    #[test]
    fn undefined_is_kestras_message() {
        let e = render("{{inputs.invalid}}", json!({})).unwrap_err();
        assert_eq!(
            e.message,
            "Unable to find `inputs` used in the expression `{{inputs.invalid}}` at line 1"
        );
    }
}
